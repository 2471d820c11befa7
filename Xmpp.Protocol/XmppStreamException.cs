namespace Xmpp.Protocol;

/// <summary>A fault that ends the stream with an RFC 6120 §4.9 stream error condition.</summary>
public sealed class XmppStreamException(string condition, string? text = null) : Exception(text ?? condition)
{
    /// <summary>The defined condition, for example <c>not-well-formed</c> or <c>policy-violation</c>.</summary>
    public string Condition { get; } = condition;

    /// <summary>Optional human-readable text sent in the error's text child.</summary>
    public string? Text { get; } = text;
}
