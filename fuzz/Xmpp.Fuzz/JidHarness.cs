using System.Text;
using Xmpp.Protocol;
using PrecisProfiles = Xmpp.Protocol.Precis.Precis;

namespace Xmpp.Fuzz;

/// JID parsing (RFC 7622) and the PRECIS profiles (RFC 8264–8266). The Try forms never throw; the throwing forms throw
/// only JidFormatException or FormatException, and agree with the Try forms; a prepared value is stable: preparing it
/// again gives it back (RFC 8264 §7: the rules are idempotent), and a parsed JID parses again to itself.
public static class JidHarness
{
    public static void Run(byte[] data)
    {
        // The fuzzer's bytes become a string the way an XML attribute's would: invalid UTF-8 is replaced, which is fine
        // here since the parser has already refused it before a JID is read.
        var s = Encoding.UTF8.GetString(data);
        FuzzAssert.WithinAllocationBound(data.Length, () => { Check(s); return 0; });
    }

    private static void Check(string s)
    {
        bool ok = Jid.TryParse(s, out var jid);
        try
        {
            var parsed = Jid.Parse(s);
            FuzzAssert.True(ok && parsed.Equals(jid), "Jid.Parse accepted what TryParse refused");
        }
        catch (JidFormatException)
        {
            FuzzAssert.True(!ok, "Jid.Parse refused what TryParse accepted");
        }
        if (jid is not null)
        {
            var text = jid.ToString();
            FuzzAssert.True(Jid.TryParse(text, out var again) && again.Equals(jid) && again.ToString() == text,
                $"the canonical form '{text}' does not parse back to itself");
            FuzzAssert.True(Jid.TryCreate(jid.Local, jid.Domain, jid.Resource, out var created) && created.Equals(jid),
                "Jid.Create from the parsed parts gives another JID");
            _ = jid.Bare.ToString();
            _ = jid.GetHashCode();
        }

        Stable(s, PrecisProfiles.TryEnforceUsernameCaseMapped, PrecisProfiles.EnforceUsernameCaseMapped, "UsernameCaseMapped");
        Stable(s, PrecisProfiles.TryEnforceOpaqueString, PrecisProfiles.EnforceOpaqueString, "OpaqueString");
        Stable(s, PrecisProfiles.TryEnforceNickname, PrecisProfiles.EnforceNickname, "Nickname");
        Stable(s, PrecisProfiles.TryPrepareDomain, PrecisProfiles.PrepareDomain, "domain preparation");
        if (PrecisProfiles.TryEnforceNickname(s, out _))
        {
            var key = PrecisProfiles.NicknameComparisonKey(s);
            FuzzAssert.True(PrecisProfiles.NicknamesMatch(s, s) && PrecisProfiles.NicknamesMatch(s, key), "a nickname does not match itself or its key");
        }
        try { _ = Xmpp.Protocol.Sasl.SaslPrep.Prepare(s); }
        catch (FormatException) { }
    }

    private delegate bool TryEnforce(string? s, out string? result);

    private static void Stable(string s, TryEnforce tryEnforce, Func<string, string> enforce, string profile)
    {
        bool ok = tryEnforce(s, out var result);
        try
        {
            var thrown = enforce(s);
            FuzzAssert.True(ok && thrown == result, $"{profile}: the throwing form accepted what the Try form refused");
        }
        catch (FormatException)
        {
            FuzzAssert.True(!ok, $"{profile}: the throwing form refused what the Try form accepted");
        }
        if (ok)
            FuzzAssert.True(tryEnforce(result, out var twice) && twice == result, $"{profile}: not idempotent on '{result}'");
    }
}
