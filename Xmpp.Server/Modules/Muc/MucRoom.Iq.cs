// XEP-0045 §6.4 room information, XEP-0410 self-ping; admin and owner requests are in their own parts.
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    private async ValueTask HandleIqAsync(StanzaContext c)
    {
        var stanza = c.Stanza;
        if (c.Type is "result" or "error")
        {
            if (c.To!.Resource is not null) RelayIqResponse(c);
            return;
        }
        var payload = stanza.Elements().FirstOrDefault(e => e.Name != "error");
        if (payload is null || c.Type is not ("get" or "set"))
        {
            Error(stanza, StanzaErrors.BadRequest);
            return;
        }
        if (c.To!.Resource is not null)
        {
            OccupantIq(c, payload);
            return;
        }
        switch (payload.Namespace)
        {
            case Ns.DiscoInfo when payload.Name == "query" && c.Type == "get":
                RoomInfo(c, payload);
                return;
            case Ns.DiscoItems when payload.Name == "query" && c.Type == "get":
                if (!Exists || (Locked && AffiliationOf(c.From) != MucAffiliation.Owner)) Error(stanza, StanzaErrors.ItemNotFound);
                else Result(c, new Element("query", Ns.DiscoItems)); // §6.5: occupants are not listed
                return;
            case Ns.MucAdmin when payload.Name == "query":
                await AdminAsync(c, payload);
                return;
            case Ns.MucOwner when payload.Name == "query":
                await OwnerAsync(c, payload);
                return;
            case Ns.MessageModerate when payload.Name == "moderate":
                await ModerateAsync(c, payload);
                return;
            case Ns.Register when payload.Name == "query":
                await RegisterAsync(c, payload);
                return;
            case Ns.Mam when payload.Name is "query" or "metadata":
                await ArchiveQueryAsync(c, payload);
                return;
        }
        Error(stanza, StanzaErrors.ServiceUnavailable);
    }

    /// XEP-0410 §3.2: a ping to one's own occupant JID is answered by the room; it tells the client whether it is
    /// still joined. Other IQs to occupants are relayed (MucRoom.IqRelay.cs).
    private void OccupantIq(StanzaContext c, Element payload)
    {
        var sender = BySession(c.From);
        if (sender is null)
        {
            Error(c.Stanza, StanzaErrors.NotAcceptable, "You are not an occupant of this room");
            return;
        }
        var target = ByNick(c.To!.Resource!);
        if (payload.Is("ping", Ns.Ping) && c.Type == "get" && ReferenceEquals(target, sender))
        {
            Result(c);
            return;
        }
        if (target is null)
        {
            Error(c.Stanza, StanzaErrors.ItemNotFound, "No occupant has that nickname");
            return;
        }
        RelayIqRequest(c, sender, target, payload);
    }

    /// §6.4: identity, the muc_* features describing the room, and the muc#roominfo form.
    private void RoomInfo(StanzaContext c, Element payload)
    {
        if (!Exists || (Locked && AffiliationOf(c.From) != MucAffiliation.Owner))
        {
            Error(c.Stanza, StanzaErrors.ItemNotFound);
            return;
        }
        if (payload.Attr("node") == RoomUserNode)
        {
            ReservedNickInfo(c);
            return;
        }
        if (payload.Attr("node") is not null)
        {
            Error(c.Stanza, StanzaErrors.ItemNotFound);
            return;
        }
        var query = new Element("query", Ns.DiscoInfo)
            .Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", "conference").SetAttr("type", "text")
                .SetAttr("name", Config.Title.Length > 0 ? Config.Title : Jid.Local));
        var features = new List<string>
        {
            Ns.DiscoInfo, Ns.Muc, Ns.StanzaId, Ns.OccupantId, Ns.MucSelfPing, Ns.MucStableId, Ns.MessageModerate, Ns.Register,
            Config.Persistent ? "muc_persistent" : "muc_temporary",
            Config.MembersOnly ? "muc_membersonly" : "muc_open",
            Config.Moderated ? "muc_moderated" : "muc_unmoderated",
            Config.PasswordProtected ? "muc_passwordprotected" : "muc_unsecured",
            Config.Public ? "muc_public" : "muc_hidden",
            Config.NonAnonymous ? "muc_nonanonymous" : "muc_semianonymous",
        };
        if (Archived) features.AddRange([Ns.Mam, Ns.MamExtended]);
        foreach (var f in features) query.Add(new Element("feature", Ns.DiscoInfo).SetAttr("var", f));
        var form = new DataForm("result", Ns.MucRoomInfo)
            .AddField("muc#roominfo_description", null, "Description", [Config.Description])
            .AddField("muc#roominfo_occupants", null, "Number of occupants", [_occupants.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)])
            .AddField("muc#roominfo_subject", null, "Subject", [Subject ?? ""])
            .AddField("muc#roominfo_changesubject", "boolean", "Occupants may change the subject", [Config.ChangeSubject ? "1" : "0"])
            .AddField("muc#roomconfig_roomname", null, "Name", [Config.Title])
            .AddField("muc#maxhistoryfetch", null, "Maximum history messages", [HistoryCapacity.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        query.Add(form.Element);
        Result(c, query);
    }
}
