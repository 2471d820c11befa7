// XEP-0441: Message Archive Management Preferences.
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Mam;

/// An account's archiving rules: JIDs listed in Never are not archived, those in Always are, and everyone else
/// follows Default (always, never, or roster: only contacts in the roster).
public sealed record MamPrefs(string Default, IReadOnlyList<Jid> Always, IReadOnlyList<Jid> Never)
{
    public static bool IsMode(string? mode) => mode is "always" or "never" or "roster";

    /// A listed full JID matches that resource only, a listed bare JID every resource of it.
    public bool? Listed(Jid contact)
    {
        // Loops, not Any(): this runs twice for every archived message.
        foreach (var j in Never)
            if (Matches(j, contact)) return false;
        foreach (var j in Always)
            if (Matches(j, contact)) return true;
        return null;
    }

    private static bool Matches(Jid listed, Jid contact) => listed.IsBare ? listed == contact.Bare : listed == contact;

    public Element ToElement()
    {
        var always = new Element("always", Ns.Mam);
        foreach (var j in Always) always.Add(new Element("jid", Ns.Mam).SetText(j.ToString()));
        var never = new Element("never", Ns.Mam);
        foreach (var j in Never) never.Add(new Element("jid", Ns.Mam).SetText(j.ToString()));
        return new Element("prefs", Ns.Mam).SetAttr("default", Default).Add(always).Add(never);
    }

    /// Reads a prefs set; null (with the reason) when the default is missing or unknown or a JID is malformed.
    public static MamPrefs? Parse(Element prefs, out string? problem)
    {
        problem = null;
        var mode = prefs.Attr("default");
        if (!IsMode(mode))
        {
            problem = "default must be always, never or roster";
            return null;
        }
        var always = Jids(prefs.Child("always", Ns.Mam), ref problem);
        var never = Jids(prefs.Child("never", Ns.Mam), ref problem);
        return problem is null ? new MamPrefs(mode!, always, never) : null;
    }

    private static List<Jid> Jids(Element? list, ref string? problem)
    {
        var jids = new List<Jid>();
        if (list is null) return jids;
        foreach (var e in list.Elements("jid", Ns.Mam))
        {
            if (!Jid.TryParse(e.Text.Trim(), out var jid))
            {
                problem ??= $"'{e.Text}' is not a JID";
                continue;
            }
            if (!jids.Contains(jid)) jids.Add(jid);
        }
        return jids;
    }
}
