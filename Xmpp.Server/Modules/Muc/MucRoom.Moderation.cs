// XEP-0425 (0.3.0) moderated message retraction, with XEP-0424 retract elements.
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    /// A moderator retracts a groupchat message by its stanza-id: the archived copy and the history kept for joiners
    /// become a tombstone (the archive keeps the record: XEP-0425, "Tombstones"), and occupants receive the retraction.
    private async ValueTask ModerateAsync(StanzaContext c, Element moderate)
    {
        if (!Exists)
        {
            Error(c.Stanza, StanzaErrors.ItemNotFound);
            return;
        }
        var actor = BySession(c.From);
        if (actor?.Role != MucRole.Moderator)
        {
            Error(c.Stanza, StanzaErrors.Forbidden, "Only moderators may retract others' messages");
            return;
        }
        if (c.Type != "set" || moderate.Attr("id") is not { Length: > 0 } id || moderate.Child("retract", Ns.MessageRetract) is null)
        {
            Error(c.Stanza, StanzaErrors.BadRequest, "Expected a moderate set with an id and a retract");
            return;
        }
        var reason = moderate.ChildText("reason", Ns.MessageModerate);
        var stamp = DateTimeOffset.UtcNow;
        bool found = false;
        for (var node = _history.First; node is not null; node = node.Next)
        {
            if (StanzaIdOf(node.Value.Message) != id) continue;
            node.Value = new HistoryEntry(node.Value.Stamp, Tombstone(node.Value.Message, actor, reason, stamp));
            found = true;
        }
        // The archive may hold the message even if archiving has since been turned off.
        if (Config.Persistent
            && (await service.Store.Archive.QueryAsync(new ArchiveQuery(RoomText, StanzaIds: [id], Max: 1))).Records is [var record])
        {
            var tombstone = Tombstone(StoredStanza.Parse(record.Payload), actor, reason, stamp);
            found |= await service.Store.ReplaceHistoryAsync(RoomText, record.Id, tombstone);
        }
        if (!found)
        {
            Error(c.Stanza, StanzaErrors.ItemNotFound, "No message with that id in this room");
            return;
        }
        Result(c);

        // XEP-0425: the retraction goes to everyone, from the room, and is itself kept so that a client catching up on the
        // archive learns of it too.
        var retraction = new Element("message", Ns.Client).SetAttr("type", "groupchat").SetAttr("from", RoomText)
            .SetAttr("id", NewStanzaId())
            .Add(Retraction("retract", actor, reason).SetAttr("id", id))
            .Add(new Element("fallback", Ns.Fallback).SetAttr("for", Ns.MessageRetract))
            .Add(new Element("body", Ns.Client).SetText($"{actor.Nick} retracted a message{(reason is null ? "" : ": " + reason)}"))
            .Add(new Element("store", Ns.Hints));
        var stanzaId = NewStanzaId();
        retraction.Add(new Element("stanza-id", Ns.StanzaId).SetAttr("id", stanzaId).SetAttr("by", RoomText));
        SendToOccupants(retraction);
        await RecordAsync(retraction, null, stanzaId);
    }

    private string? StanzaIdOf(Element message) =>
        message.Elements("stanza-id", Ns.StanzaId).FirstOrDefault(e => e.Attr("by") == RoomText)?.Attr("id");

    /// XEP-0425 tombstones: the message keeps who sent it and its ids; its content gives way to a &lt;retracted/&gt; saying
    /// when and by which moderator.
    private Element Tombstone(Element original, MucOccupant moderator, string? reason, DateTimeOffset stamp)
    {
        var tombstone = new Element("message", Ns.Client);
        foreach (var (name, value) in original.Attributes) tombstone.SetAttr(name, value);
        foreach (var child in original.Elements())
            if (child.Is("stanza-id", Ns.StanzaId) || child.Is("occupant-id", Ns.OccupantId) || child.Is("x", Ns.MucUser))
                tombstone.Add(child.Clone());
        tombstone.Add(Retraction("retracted", moderator, reason).SetAttr("stamp", DateTimeProfile.Format(stamp)));
        return tombstone;
    }

    private Element Retraction(string name, MucOccupant moderator, string? reason)
    {
        var e = new Element(name, Ns.MessageRetract)
            .Add(new Element("moderated", Ns.MessageModerate).SetAttr("by", OccupantJid(moderator).ToString())
                .Add(new Element("occupant-id", Ns.OccupantId).SetAttr("id", moderator.OccupantId)));
        if (reason is not null) e.Add(new Element("reason", Ns.MessageRetract).SetText(reason));
        return e;
    }
}
