// XEP-0045 §7.8.2 mediated invitations and declines. Direct invitations (XEP-0249) are ordinary messages between users.
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    private async ValueTask InviteOrDeclineAsync(StanzaContext c, MucOccupant? sender, Element x)
    {
        if (!Exists || Locked) { Error(c.Stanza, StanzaErrors.ItemNotFound); return; }
        if (x.Child("decline", Ns.MucUser) is { } decline)
        {
            // §7.8.2: the invitee's decline goes to the inviter, from the room, naming who declined.
            if (!Jid.TryParse(decline.Attr("to"), out var inviter)) { Error(c.Stanza, StanzaErrors.JidMalformed); return; }
            var d = new Element("decline", Ns.MucUser).SetAttr("from", c.From.Bare.ToString());
            if (decline.Child("reason", Ns.MucUser) is { } r) d.Add(r.Clone());
            Send(new Element("message", Ns.Client).SetAttr("from", RoomText).SetAttr("to", inviter.ToString())
                .Add(new Element("x", Ns.MucUser).Add(d)));
            return;
        }
        if (sender is null)
        {
            Error(c.Stanza, StanzaErrors.NotAcceptable, "Only occupants may invite");
            return;
        }
        // §7.8.2: in a members-only room only admins may invite unless occupants are allowed to.
        if (Config.MembersOnly && sender.Affiliation < MucAffiliation.Admin && !Config.AllowInvites)
        {
            Error(c.Stanza, StanzaErrors.Forbidden, "Only admins may invite to this room");
            return;
        }
        var invites = x.Elements("invite", Ns.MucUser).ToList();
        var targets = new List<(Jid To, Element? Reason)>();
        foreach (var invite in invites)
        {
            if (!Jid.TryParse(invite.Attr("to"), out var to)) { Error(c.Stanza, StanzaErrors.JidMalformed); return; }
            targets.Add((to, invite.Child("reason", Ns.MucUser)));
        }
        bool changed = false;
        foreach (var (to, reason) in targets)
        {
            var inv = new Element("invite", Ns.MucUser).SetAttr("from", c.From.Bare.ToString());
            if (reason is not null) inv.Add(reason.Clone());
            var mx = new Element("x", Ns.MucUser).Add(inv);
            if (Config.PasswordProtected) mx.Add(new Element("password", Ns.MucUser).SetText(Config.Password));
            Send(new Element("message", Ns.Client).SetAttr("from", RoomText).SetAttr("to", to.ToString()).Add(mx)
                .Add(new Element("body", Ns.Client).SetText($"{c.From.Bare} invites you to the room {Jid}" + (reason is null ? "" : ": " + reason.Text))));
            // §7.8.2: an invitation to a members-only room by an admin makes the invitee a member.
            if (Config.MembersOnly && AffiliationOf(to) == MucAffiliation.None && sender.Affiliation >= MucAffiliation.Admin)
            {
                Affiliations[to.Bare.ToString()] = MucAffiliation.Member;
                changed = true;
            }
        }
        if (changed) await SaveAsync();
    }
}
