namespace Xmpp.Protocol;

/// <summary>Thrown when a string is not a valid JID under RFC 7622, which the server reports as <c>jid-malformed</c>.</summary>
public sealed class JidFormatException : FormatException
{
    /// <summary>Creates the exception with a message naming the part that failed and why.</summary>
    public JidFormatException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the failure that caused it.</summary>
    public JidFormatException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
