// Absent-member notifications (the product's policy, documented in README): a members-only room lets members who are
// not in it learn of new activity, as a normal message that the offline spool keeps for a sleeping phone.
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    private const int SnippetChars = 200;

    /// When each member was last notified (Environment.TickCount64), for MucOptions.NotifyIntervalSeconds.
    private readonly Dictionary<string, long> _notified = new(StringComparer.Ordinal);

    /// After a groupchat message with a body: each affiliated member not in the room, other than the sender, gets a
    /// normal message from the room's bare JID (policy "mentions": only when the message mentions them) carrying a
    /// short text, the message as occupants received it (XEP-0297, with its stanza-id) and a XEP-0249 invitation
    /// element so clients show the room. MUC MAM lets the member catch up on the rest.
    private void NotifyAbsentMembers(Element message, MucOccupant sender)
    {
        var policy = service.Options.NotifyAbsentMembers;
        if (policy == "none" || !Config.MembersOnly) return;
        var body = message.ChildText("body", Ns.Client) ?? "";
        var senderBare = sender.Bare.ToString();
        foreach (var (bare, affiliation) in Affiliations)
        {
            if (affiliation < MucAffiliation.Member || bare == senderBare || ByBare(bare).Any()) continue;
            bool mentioned = Mentions(message, body, bare);
            if (policy == "mentions" && !mentioned) continue;
            if (!TakeNotificationSlot(bare)) continue;
            Send(Notification(message, sender, bare, mentioned, body));
        }
    }

    /// A mention is the member's reserved nick as a whole word, their bare JID in the text (both case-insensitive), or
    /// a XEP-0372 mention reference to their JID.
    private bool Mentions(Element message, string body, string bare)
    {
        foreach (var reference in message.Elements("reference", Ns.Reference))
            if (reference.Attr("type") == "mention" && reference.Attr("uri") is { } uri
                && string.Equals(uri.Split('?', 2)[0], "xmpp:" + bare, StringComparison.OrdinalIgnoreCase))
                return true;
        if (body.Contains(bare, StringComparison.OrdinalIgnoreCase)) return true;
        return Nicks.TryGetValue(bare, out var nick) && ContainsWord(body, nick);
    }

    private static bool ContainsWord(string text, string word)
    {
        for (int at = text.IndexOf(word, StringComparison.OrdinalIgnoreCase); at >= 0;
             at = text.IndexOf(word, at + 1, StringComparison.OrdinalIgnoreCase))
        {
            bool startOk = at == 0 || !char.IsLetterOrDigit(text[at - 1]);
            int end = at + word.Length;
            bool endOk = end == text.Length || !char.IsLetterOrDigit(text[end]);
            if (startOk && endOk) return true;
        }
        return false;
    }

    private bool TakeNotificationSlot(string bare)
    {
        long now = Environment.TickCount64, interval = service.Options.NotifyIntervalSeconds * 1000L;
        if (interval > 0 && _notified.TryGetValue(bare, out var last) && now - last < interval) return false;
        _notified[bare] = now;
        return true;
    }

    private Element Notification(Element message, MucOccupant sender, string bare, bool mentioned, string body)
    {
        var name = Config.Title.Length > 0 ? Config.Title : Jid.Local!;
        var snippet = body.Length > SnippetChars ? body[..SnippetChars] + "…" : body;
        var text = mentioned ? $"{sender.Nick} mentioned you in {name}: {snippet}" : $"{sender.Nick} in {name}: {snippet}";
        return new Element("message", Ns.Client).SetAttr("type", "normal").SetAttr("from", RoomText).SetAttr("to", bare)
            .SetAttr("id", NewStanzaId())
            .Add(new Element("body", Ns.Client).SetText(text))
            .Add(Forwarded.Wrap(message.Clone().SetAttr("to", null), DateTimeOffset.UtcNow))
            .Add(new Element("x", Ns.ConferenceInvite).SetAttr("jid", RoomText));
    }
}
