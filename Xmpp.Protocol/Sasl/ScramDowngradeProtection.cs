// XEP-0474: SASL SCRAM Downgrade Protection (SSDP).
using System.Text;

namespace Xmpp.Protocol.Sasl;

/// <summary>Computes the XEP-0474 downgrade-protection value a server puts into its SCRAM server-first-message as the optional attribute <c>h</c>.</summary>
public static class ScramDowngradeProtection
{
    /// <summary>The SCRAM attribute name that carries the value (XEP-0474 §5.1).</summary>
    public const char AttributeName = 'h';

    /// <summary>Returns base64(H(S)) where S is the advertised mechanisms sorted by octet and joined by 0x1E, followed, when XEP-0440 advertised channel-binding types, by 0x1F and the sorted types joined by 0x1E.</summary>
    public static string Compute(ScramHash hash, IEnumerable<string> mechanisms, IEnumerable<string>? channelBindingTypes)
    {
        // XEP-0474 §5.1: all sorting uses the "i;octet" collation (RFC 4790 §9.3), i.e. ordinal byte order.
        var s = new StringBuilder();
        s.AppendJoin('\x1E', mechanisms.Order(StringComparer.Ordinal));
        if (channelBindingTypes is not null)
        {
            s.Append('\x1F');
            s.AppendJoin('\x1E', channelBindingTypes.Order(StringComparer.Ordinal));
        }
        return Convert.ToBase64String(ScramHashes.Hash(hash, Encoding.UTF8.GetBytes(s.ToString())));
    }
}
