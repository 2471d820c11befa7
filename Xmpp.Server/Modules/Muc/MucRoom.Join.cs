// XEP-0045 §7.2 entering, §7.6 changing nickname, §7.7 presence updates, §7.14 exiting a room.
using System.Security.Cryptography;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Precis;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    private async ValueTask HandlePresenceAsync(StanzaContext c)
    {
        var from = c.From;
        var occupant = BySession(from);
        switch (c.Type)
        {
            case "error":
                // An occupant whose client or server bounces room traffic is no longer there (XEP-0045 §18.1, code 333).
                if (occupant is not null) RemoveSession(occupant, from, [333], forced: true);
                return;
            case "unavailable":
                if (occupant is not null) RemoveSession(occupant, from, [], forced: false, c.Stanza);
                return;
            case null:
                break;
            default:
                return; // subscriptions and probes mean nothing to a room
        }
        if (c.To!.Resource is not { } requested)
        {
            // §7.2.1: entering needs a nickname.
            Error(c.Stanza, StanzaErrors.JidMalformed, "A nickname is required to enter a room");
            return;
        }
        if (occupant is null) await JoinAsync(c, requested);
        else if (ByNick(requested) is { } same && ReferenceEquals(same, occupant)) UpdatePresence(occupant, c.Stanza);
        else ChangeNick(c, occupant, requested);
    }

    private async ValueTask JoinAsync(StanzaContext c, string requested)
    {
        var from = c.From;
        if (!Precis.TryEnforceNickname(requested, out var nick))
        {
            Error(c.Stanza, StanzaErrors.JidMalformed, "The nickname is not allowed (RFC 8266)");
            return;
        }
        if (!service.JoinRate.TryTake(from.Bare.ToString()))
        {
            // Join floods (each join is a presence to every occupant): RFC 6120 §8.3.3.12, type wait.
            service.Metrics?.Refuse("muc-join-rate");
            Error(c.Stanza, StanzaErrors.PolicyViolation, "Too many room joins: slow down", "wait");
            return;
        }
        var mucX = c.Stanza.Child("x", Ns.Muc);
        bool created = false;
        if (!Exists)
        {
            if (service.RoomsOwnedBy(from.Bare.ToString()) >= service.Options.MaxRoomsPerUser)
            {
                Error(c.Stanza, StanzaErrors.NotAllowed, "You own too many rooms already");
                return;
            }
            created = true;
            Exists = true;
            Affiliations[from.Bare.ToString()] = MucAffiliation.Owner;
            // §10.1.1: a client that speaks MUC gets a locked room to configure; an older one gets an instant room.
            Locked = mucX is not null;
            Config = new MucRoomConfig { HistoryLength = Math.Min(20, service.Options.MaxHistoryMessages) };
        }
        var affiliation = AffiliationOf(from);
        var existing = ByNick(nick);
        string? refusal = null, text = null;
        if (Locked && affiliation != MucAffiliation.Owner) (refusal, text) = (StanzaErrors.ItemNotFound, "The room is locked until its owner configures it");
        else if (affiliation == MucAffiliation.Outcast) (refusal, text) = (StanzaErrors.Forbidden, "You are banned from this room");
        else if (Config.MembersOnly && affiliation < MucAffiliation.Member) (refusal, text) = (StanzaErrors.RegistrationRequired, "This room is members-only");
        else if (existing is not null && existing.Bare != from.Bare) (refusal, text) = (StanzaErrors.Conflict, "That nickname is in use");
        else if (ReservedBy(nick) is { } holder && holder != from.Bare.ToString())
            (refusal, text) = (StanzaErrors.Conflict, "That nickname is reserved"); // §7.10, §7.2.9
        else if (Config.PasswordProtected && affiliation != MucAffiliation.Owner && !PasswordMatches(mucX?.ChildText("password", Ns.Muc)))
            (refusal, text) = (StanzaErrors.NotAuthorized, "A password is required");
        else if (existing is null && _occupants.Count >= MaxUsers && affiliation < MucAffiliation.Admin)
            (refusal, text) = (StanzaErrors.ServiceUnavailable, "The room is full");
        if (refusal is not null)
        {
            // §7.2.6-§7.2.10: the error comes from the occupant JID the user asked for.
            Error(c.Stanza, refusal, text);
            return;
        }
        if (existing is not null)
        {
            // Another resource of the same user joins under the same nick: it shares the occupant (multi-session).
            existing.Sessions.Add(from);
            existing.Presence = Strip(c.Stanza);
            SendRoster(from, existing);
            Send(OccupantPresence(existing, existing, from, null, [110, .. SelfCodes(created, nick != requested)]));
            SendJoinHistory(from, mucX);
            SendSubject(from);
            return;
        }
        var occupant = new MucOccupant(nick, from.Bare, OccupantIdFor(from))
        {
            Affiliation = affiliation,
            Role = DefaultRole(affiliation),
            Presence = Strip(c.Stanza),
        };
        occupant.Sessions.Add(from);
        SendRoster(from, occupant);
        _occupants.Add(occupant);
        BroadcastPresence(occupant, null, selfCodes: SelfCodes(created, nick != requested));
        SendJoinHistory(from, mucX);
        SendSubject(from);
        if (created) await SaveAsync();
    }

    /// §7.2.3: the occupants already present, one presence each, before the new occupant's own.
    // The room password is a secret: compared in constant time, so the answer's timing says nothing about it.
    private bool PasswordMatches(string? given) =>
        given is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(Config.Password));

    private void SendRoster(Jid to, MucOccupant receiver)
    {
        foreach (var o in _occupants)
            if (!ReferenceEquals(o, receiver)) Send(OccupantPresence(o, receiver, to, null));
    }

    /// 100 non-anonymous room (§7.2.4), 170 room logged (§7.2.12: archived), 201 room created (§10.1.1),
    /// 210 nick changed by the service (§7.2.10).
    private List<int> SelfCodes(bool created, bool nickModified)
    {
        var codes = new List<int>();
        if (Config.NonAnonymous) codes.Add(100);
        if (Archived) codes.Add(170);
        if (created) codes.Add(201);
        if (nickModified) codes.Add(210);
        return codes;
    }

    /// The client's presence children worth relaying: everything but the MUC join element and errors.
    private static Element Strip(Element presence)
    {
        var p = new Element("presence", Ns.Client);
        foreach (var child in presence.Elements())
            if (!child.Is("x", Ns.Muc) && child.Name != "error" && child.Namespace != Ns.MucUser && child.Namespace != Ns.OccupantId)
                p.Add(child.Clone());
        return p;
    }

    /// §7.7: a new status or show is broadcast to all occupants.
    private void UpdatePresence(MucOccupant occupant, Element presence)
    {
        occupant.Presence = Strip(presence);
        BroadcastPresence(occupant, null);
    }

    /// §7.6: unavailable with 303 and the new nick from the old occupant JID, then available from the new one.
    private void ChangeNick(StanzaContext c, MucOccupant occupant, string requested)
    {
        if (!Precis.TryEnforceNickname(requested, out var nick))
        {
            Error(c.Stanza, StanzaErrors.JidMalformed, "The nickname is not allowed (RFC 8266)");
            return;
        }
        if (ByNick(nick) is { } other && !ReferenceEquals(other, occupant))
        {
            Error(c.Stanza, StanzaErrors.Conflict, "That nickname is in use");
            return;
        }
        if (ReservedBy(nick) is { } holder && holder != occupant.Bare.ToString())
        {
            // §7.6: a nick reserved by someone else is refused like one in use.
            Error(c.Stanza, StanzaErrors.Conflict, "That nickname is reserved");
            return;
        }
        if (!service.NickChangeRate.TryTake(Jid + " " + occupant.Bare))
        {
            // Each change is two presences to every occupant: RFC 6120 §8.3.3.12, type wait.
            service.Metrics?.Refuse("muc-nick-rate");
            Error(c.Stanza, StanzaErrors.PolicyViolation, "Too many nickname changes: slow down", "wait");
            return;
        }
        BroadcastPresence(occupant, "unavailable", [303], item: i => i.SetAttr("nick", nick));
        occupant.Nick = nick;
        occupant.Presence = Strip(c.Stanza);
        BroadcastPresence(occupant, null, selfCodes: nick != requested ? [210] : null);
    }

    /// One session of an occupant leaves (§7.14); when it was the last, the occupant is gone for everyone.
    private void RemoveSession(MucOccupant occupant, Jid session, int[] codes, bool forced, Element? presence = null)
    {
        if (occupant.Sessions.Count > 1)
        {
            occupant.Sessions.Remove(session);
            if (!forced) Send(OccupantPresence(occupant, occupant, session, "unavailable", [110, .. codes]));
            return;
        }
        var status = presence?.ChildText("status", Ns.Client);
        RemoveOccupant(occupant, codes, x: null, status: status, notifySelf: !forced);
    }

    /// Removes an occupant and tells everyone (its own sessions first, with 110 unless it cannot be reached).
    private void RemoveOccupant(MucOccupant occupant, int[] codes, Action<Element>? x, string? status = null, bool notifySelf = true,
        Action<Element>? item = null)
    {
        occupant.Role = MucRole.None;
        if (notifySelf)
            foreach (var s in occupant.Sessions)
                Send(WithStatus(OccupantPresence(occupant, occupant, s, "unavailable", [110, .. codes], item, x), status));
        _occupants.Remove(occupant);
        foreach (var r in _occupants)
            foreach (var s in r.Sessions)
                Send(WithStatus(OccupantPresence(occupant, r, s, "unavailable", codes, item, x), status));
    }

    private static Element WithStatus(Element presence, string? status)
    {
        if (status is not null) presence.Add(new Element("status", Ns.Client).SetText(status));
        return presence;
    }
}
