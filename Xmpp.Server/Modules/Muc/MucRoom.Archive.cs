// XEP-0313 (MUC archives): the room's message archive, queried at the room's bare JID.
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Mam;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    /// Messages are archived only while the room is persistent with archiving on: a temporary room's archive would
    /// outlive nothing. This is also "the room is logged" of XEP-0045 (status codes 170 and 171).
    private bool Archived => Config.Persistent && Config.Archiving;

    private async ValueTask ArchiveQueryAsync(StanzaContext c, Element payload)
    {
        if (!Exists || (Locked && AffiliationOf(c.From) != MucAffiliation.Owner))
        {
            Error(c.Stanza, StanzaErrors.ItemNotFound);
            return;
        }
        if (!Archived)
        {
            Error(c.Stanza, StanzaErrors.ServiceUnavailable, "This room is not archived");
            return;
        }
        if (!MayReadArchive(c.From))
        {
            Error(c.Stanza, StanzaErrors.Forbidden, "You may not read this room's archive");
            return;
        }
        if (payload.Name == "metadata")
        {
            if (c.Type == "get") Result(c, await MamArchiveReader.MetadataAsync(service.Store.Archive, RoomText));
            else Error(c.Stanza, StanzaErrors.BadRequest, "metadata is read with a get");
            return;
        }
        if (c.Type == "get")
        {
            Result(c, new Element("query", Ns.Mam).Add(MamQuery.Form()));
            return;
        }
        var query = MamQuery.Parse(payload, out var condition, out var text, fullWith: true);
        if (query is null)
        {
            Error(c.Stanza, condition, text);
            return;
        }
        string? with = null;
        if (query.With is { } w)
        {
            // Records are kept by the sender's nick at the time: 'with' names an occupant JID of this room.
            if (!w.BareEquals(Jid) || w.Resource is null)
            {
                Error(c.Stanza, StanzaErrors.FeatureNotImplemented, "with must be an occupant JID of this room");
                return;
            }
            with = w.Resource;
        }
        var archive = service.Store.Archive;
        var (store, refusal, why) = await MamArchiveReader.ToStoreQueryAsync(archive, RoomText, query, with, service.MamOptions);
        if (store is null)
        {
            Error(c.Stanza, refusal, why);
            return;
        }
        var page = await archive.QueryAsync(store);
        bool seesJids = SeesRealJids(c.From);
        var (messages, fin) = MamArchiveReader.Results(query, page, RoomText, c.From.ToString(),
            m => seesJids ? m : WithoutRealJid(m));
        // Straight to the querying stream, like the user archive's results: routed, they would meet the delivery hooks
        // that hold messages for a session which has not sent presence yet, as a client catching up often has not.
        // The iq answer follows through the room's outbox, so it still comes last (§4.2).
        foreach (var m in messages)
            if (c.Origin is { } origin) origin.Send(m);
            else Send(m);
        Result(c, fin);
    }

    /// Who may read the archive (XEP-0313 leaves it to the room; we follow who may read along when joined):
    /// never outcasts; occupants; in members-only or password-protected rooms only members and above (a non-member
    /// who knows the password reads once joined); in open rooms anyone who could enter.
    private bool MayReadArchive(Jid from)
    {
        var affiliation = AffiliationOf(from);
        if (affiliation == MucAffiliation.Outcast) return false;
        if (BySession(from) is not null) return true;
        if (Config.MembersOnly || Config.PasswordProtected) return affiliation >= MucAffiliation.Member;
        return true;
    }

    /// Real JIDs in results only where the querier could see them in the room (XEP-0045 §7.2.3): a non-anonymous
    /// room, or a moderator (admins and owners always enter as moderators).
    private bool SeesRealJids(Jid from) =>
        Config.NonAnonymous || BySession(from)?.Role == MucRole.Moderator || AffiliationOf(from) >= MucAffiliation.Admin;

    private static Element WithoutRealJid(Element message)
    {
        message.RemoveAll("x", Ns.MucUser);
        return message;
    }
}
