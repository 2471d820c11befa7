// XEP-0401: Easy User Onboarding, with XEP-0379 Pre-Authenticated Roster Subscription and XEP-0445 Pre-Authenticated In-Band Registration.
using System.Globalization;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Invites;

/// Invitations inside XMPP: the ad-hoc commands that create them, the token a client presents before in-band
/// registration (kept on the stream for RegisterModule, which creates the account), and subscription requests that
/// carry a contact invitation's token, which are approved both ways without asking the inviter.
[Xep("XEP-0401", "0.5.0", "contact invitations for users, account invitations for admins and from the CLI; web landing and sign-up pages")]
[Xep("XEP-0379", "0.3.3", "subscription requests with a valid token are approved, and answered with a request back")]
[Xep("XEP-0445", "0.2.0", "token before in-band registration, also when open registration is off")]
public sealed class InvitesModule(
    InviteService invites,
    AdHocCommands commands,
    IRosterService rosters,
    IRouter router,
    ServedDomains domains,
    ILogger<InvitesModule> logger) : IXmppModule
{
    /// Where an unauthenticated stream keeps the token it presented (IqContext.StreamState), for RegisterModule.
    public const string StreamTokenKey = Ns.Pars + "#token";

    /// Before the presence module (PresenceModule.HookOrder), which then finds the request pre-approved.
    public const int HookOrder = 900;

    public void Register(IModuleBuilder module)
    {
        // XEP-0445 §2 and its older XEP-0401 name: this server takes a token before registration. Not offered before
        // STARTTLS when the server requires it, since the IQs would be refused there.
        module.StreamFeature(StreamFeatureStage.PreAuth, f => Usable(f) ? new Element("register", Ns.Invite) : null);
        module.StreamFeature(StreamFeatureStage.PreAuth, f => Usable(f) ? new Element("register", Ns.IbrToken) : null);
        module.Iq(IqTarget.Stream, "preauth", Ns.Pars, PreAuthAsync);
        module.Hook(HookPoint.InboundPresence, HookOrder, PreAuthorizedSubscribeAsync);
        commands.Add(new AdHocCommand(Ns.Invite + "#invite", "Create new contact invite", CommandAccess.LocalUsers, null,
            (r, _) => CreateAsync(r, InviteKind.Contact, r.From.Bare.ToString(), invites.Options.Invites.UsersMayInviteAccounts)));
        commands.Add(new AdHocCommand(Ns.Invite + "#create-account", "Create new account invite", CommandAccess.Admins, null,
            (r, _) => CreateAsync(r, InviteKind.Account, null, true)));
        // Not in XEP-0401: as xmppd invite create --admin, for admins at their client (Gajim and Psi list every command).
        commands.Add(new AdHocCommand(Ns.AdminInvite, "Create new administrator invite", CommandAccess.Admins, null,
            (r, _) => CreateAsync(r, InviteKind.Account, null, true, grantsAdmin: true)));
    }

    private bool Usable(StreamFeatureContext f) => f.IsSecure || !invites.Options.RequireEncryption;

    /// XEP-0445 §3: the token is checked now and remembered on this stream; the registration that follows uses it.
    private async ValueTask PreAuthAsync(IqContext c)
    {
        if (!c.IsSet || c.StreamState is null) { c.Error(StanzaErrors.BadRequest); return; }
        var token = c.Payload.Attr("token");
        if (await invites.FindForAccountAsync(c.To.Domain, token) is null)
        {
            logger.LogInformation("An invalid or used invitation token was presented from {Ip}", c.RemoteAddress);
            c.Error(StanzaErrors.Forbidden, "The invitation is invalid, used up or expired");
            return;
        }
        c.StreamState[StreamTokenKey] = token!;
        c.Result();
    }

    private async ValueTask<AdHocResult> CreateAsync(AdHocRequest r, InviteKind kind, string? inviter, bool createsAccount, bool grantsAdmin = false)
    {
        var (invite, token) = await invites.Store.CreateAsync(kind, r.Domain, inviter, invites.DefaultLifetime, 1, createsAccount, grantsAdmin);
        logger.LogInformation("{Jid} created a {Kind} invitation{Admin}", r.From.Bare, kind, grantsAdmin ? " that grants admin" : "");
        // The result fields Prosody's and ejabberd's commands return, which Conversations, Monal and yaxim read.
        var form = new DataForm("result");
        form.AddField("uri", "text-single", "Invite URI", [InviteLinks.XmppUri(invite, token)]);
        if (invites.Options.HttpPort != 0 && invites.Options.Invites.WebPages)
            form.AddField("landing-url", "text-single", "Invite web page", [InviteLinks.PageUrl(invites.Options, r.Domain, token)]);
        form.AddField("expire", "text-single", "Invite valid until", [invite.Expires.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)]);
        return new AdHocResult(null, Form: form);
    }

    /// XEP-0379 §3: a subscription request to a local account carrying a token of that account's invitation is
    /// approved on the owner's behalf, and the owner asks back, so both end up subscribed. A request with a wrong
    /// token is left to the owner like any other (§4: the token only spares the question).
    private async ValueTask<bool> PreAuthorizedSubscribeAsync(StanzaContext c)
    {
        if (c.Type != "subscribe" || c.To is not { Local: not null } to || c.Stanza.Child("preauth", Ns.Pars) is not { } preauth) return false;
        var owner = to.Bare;
        var sender = c.From.Bare;
        if (owner == sender) return false;
        var invite = await invites.Store.TryUseAsync(owner.Domain, preauth.Attr("token"), i => i.Inviter == owner.ToString());
        if (invite is null) return false;
        logger.LogInformation("{Sender}'s request to {Owner} carries a valid invitation; approved both ways", sender, owner);

        // The owner's record: pre-approved (RFC 6121 §3.4), so the presence module approves the request this hook
        // passes on; and asking for the sender's presence in return.
        var before = await rosters.FindAsync(owner, sender);
        bool ownerSubscribed = before is { Subscription: Subscription.To or Subscription.Both };
        await rosters.ChangeAsync(owner, sender, item => (item ?? NewItem(sender)) switch
        {
            { Subscription: Subscription.Both } same => same,
            var i => i with
            {
                PreApproved = i.Subscription is not Subscription.From, InRoster = true,
                AskOut = !ownerSubscribed,
            },
        });
        if (!ownerSubscribed)
        {
            if (domains.IsLocal(sender))
            {
                // The sender followed the invitation, which asks for a mutual subscription (XEP-0379 §3 has its client
                // pre-approve the inviter); for a local sender the server records that pre-approval itself.
                await rosters.ChangeAsync(sender, owner, item => item is { Subscription: Subscription.From or Subscription.Both }
                    ? item : (item ?? NewItem(owner)) with { PreApproved = true, InRoster = true });
            }
            await router.RouteAsync(new Element("presence", Ns.Client).SetAttr("type", "subscribe")
                .SetAttr("from", owner.ToString()).SetAttr("to", sender.ToString()), null);
        }
        return false;
    }

    private static RosterItem NewItem(Jid contact) =>
        new(contact.ToString(), null, Array.Empty<string>(), Subscription.None, AskOut: false, PendingIn: false, PreApproved: false, InRoster: true);
}
