// XEP-0045 §8 moderator use cases (kick, voice) and §9 admin use cases (ban, member, moderator, admin and owner lists).
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    private async ValueTask AdminAsync(StanzaContext c, Element query)
    {
        var actor = BySession(c.From);
        var actorAffiliation = AffiliationOf(c.From);
        if (!Exists) { Error(c.Stanza, StanzaErrors.ItemNotFound); return; }
        var items = query.Elements("item", Ns.MucAdmin).ToList();
        if (items.Count == 0) { Error(c.Stanza, StanzaErrors.BadRequest, "Expected at least one item"); return; }
        if (c.Type == "get")
        {
            AdminList(c, items[0], actor, actorAffiliation);
            return;
        }
        // Check every item before applying any, so a request is applied whole or not at all.
        var changes = new List<Action>();
        foreach (var item in items)
        {
            string? problem = item.Attr("role") is { } role
                ? PlanRoleChange(item, role, actor, actorAffiliation, changes)
                : item.Attr("affiliation") is { } aff
                    ? PlanAffiliationChange(item, aff, actorAffiliation, changes)
                    : StanzaErrors.BadRequest;
            if (problem is not null) { Error(c.Stanza, problem); return; }
        }
        if (changes.Count > 0 && WouldLeaveNoOwner(items))
        {
            // §10.6: the last owner cannot be removed.
            Error(c.Stanza, StanzaErrors.Conflict, "A room needs at least one owner");
            return;
        }
        foreach (var change in changes) change();
        Result(c);
        await SaveAsync();
    }

    /// §9.5, §9.8, §10.5, §10.8, §8.5, §9.11: lists by affiliation (admins and owners) or role (moderators).
    private void AdminList(StanzaContext c, Element item, MucOccupant? actor, MucAffiliation actorAffiliation)
    {
        var result = new Element("query", Ns.MucAdmin);
        if (MucNames.TryAffiliation(item.Attr("affiliation"), out var aff) && aff != MucAffiliation.None)
        {
            if (actorAffiliation < MucAffiliation.Admin) { Error(c.Stanza, StanzaErrors.Forbidden); return; }
            foreach (var (jid, a) in Affiliations.Where(p => p.Value == aff).OrderBy(p => p.Key, StringComparer.Ordinal))
                result.Add(new Element("item", Ns.MucAdmin).SetAttr("affiliation", MucNames.Of(a)).SetAttr("jid", jid));
        }
        else if (MucNames.TryRole(item.Attr("role"), out var role) && role is MucRole.Moderator or MucRole.Participant or MucRole.Visitor)
        {
            if (actor?.Role != MucRole.Moderator) { Error(c.Stanza, StanzaErrors.Forbidden); return; }
            foreach (var o in _occupants.Where(o => o.Role == role))
                result.Add(new Element("item", Ns.MucAdmin).SetAttr("role", MucNames.Of(o.Role)).SetAttr("affiliation", MucNames.Of(o.Affiliation))
                    .SetAttr("nick", o.Nick).SetAttr("jid", o.Bare.ToString()));
        }
        else { Error(c.Stanza, StanzaErrors.BadRequest); return; }
        Result(c, result);
    }

    /// §8.2 kick, §8.3 grant voice, §8.4 revoke voice, §9.6 grant moderator, §9.7 revoke moderator.
    private string? PlanRoleChange(Element item, string roleName, MucOccupant? actor, MucAffiliation actorAffiliation, List<Action> changes)
    {
        if (!MucNames.TryRole(roleName, out var role)) return StanzaErrors.BadRequest;
        if (actor?.Role != MucRole.Moderator) return StanzaErrors.Forbidden;
        if (item.Attr("nick") is not { } nick) return StanzaErrors.BadRequest;
        if (ByNick(nick) is not { } target) return StanzaErrors.ItemNotFound;
        // A moderator cannot touch someone of higher affiliation; moderator status itself is given and taken by admins.
        if (target.Affiliation > actorAffiliation && !ReferenceEquals(target, actor)) return StanzaErrors.NotAllowed;
        if (target.Affiliation >= MucAffiliation.Admin && role < MucRole.Moderator) return StanzaErrors.NotAllowed;
        if ((role == MucRole.Moderator || target.Role == MucRole.Moderator) && actorAffiliation < MucAffiliation.Admin) return StanzaErrors.NotAllowed;
        var reason = item.ChildText("reason", Ns.MucAdmin);
        changes.Add(() =>
        {
            if (!_occupants.Contains(target)) return;
            if (role == MucRole.None)
            {
                RemoveOccupant(target, [307], x: null, item: i => AddReason(i, reason, actor));
                return;
            }
            target.Role = role;
            BroadcastPresence(target, null, item: i => AddReason(i, reason, actor));
        });
        return null;
    }

    /// §9.1 ban, §9.3 grant membership, §9.4 revoke membership, §10.3-§10.7 owners and admins.
    private string? PlanAffiliationChange(Element item, string affName, MucAffiliation actorAffiliation, List<Action> changes)
    {
        if (!MucNames.TryAffiliation(affName, out var aff)) return StanzaErrors.BadRequest;
        if (!Jid.TryParse(item.Attr("jid"), out var jid)) return StanzaErrors.BadRequest;
        var bare = jid.Bare.ToString();
        var current = Affiliations.TryGetValue(bare, out var a) ? a : MucAffiliation.None;
        // Admins manage members and outcasts among those below them; owners manage everyone.
        if (actorAffiliation < MucAffiliation.Admin) return StanzaErrors.Forbidden;
        if (actorAffiliation == MucAffiliation.Admin && (current >= MucAffiliation.Admin || aff >= MucAffiliation.Admin)) return StanzaErrors.NotAllowed;
        var reason = item.ChildText("reason", Ns.MucAdmin);
        changes.Add(() => SetAffiliation(jid.Bare, aff, reason));
        return null;
    }

    private bool WouldLeaveNoOwner(List<Element> items)
    {
        var owners = Affiliations.Where(p => p.Value == MucAffiliation.Owner).Select(p => p.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var item in items)
        {
            if (item.Attr("affiliation") is not { } name || !Jid.TryParse(item.Attr("jid"), out var jid)) continue;
            if (name == "owner") owners.Add(jid.Bare.ToString());
            else owners.Remove(jid.Bare.ToString());
        }
        return owners.Count == 0;
    }

    private void SetAffiliation(Jid bare, MucAffiliation aff, string? reason)
    {
        var key = bare.ToString();
        if (aff == MucAffiliation.None) Affiliations.Remove(key);
        else Affiliations[key] = aff;
        foreach (var o in ByBare(key).ToList())
        {
            o.Affiliation = aff;
            if (aff == MucAffiliation.Outcast)
            {
                // §9.1: a banned occupant is removed with 301.
                RemoveOccupant(o, [301], x: null, item: i => AddReason(i, reason, null));
                continue;
            }
            if (Config.MembersOnly && aff < MucAffiliation.Member)
            {
                // §9.4: losing membership of a members-only room removes the occupant with 321.
                RemoveOccupant(o, [321], x: null, item: i => AddReason(i, reason, null));
                continue;
            }
            o.Role = DefaultRole(aff);
            BroadcastPresence(o, null, item: i => AddReason(i, reason, null));
        }
    }

    private static void AddReason(Element item, string? reason, MucOccupant? actor)
    {
        if (actor is not null) item.Add(new Element("actor", Ns.MucUser).SetAttr("nick", actor.Nick));
        if (reason is not null) item.Add(new Element("reason", Ns.MucUser).SetText(reason));
    }
}
