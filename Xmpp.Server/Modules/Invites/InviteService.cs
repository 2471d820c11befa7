using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Server.Modules.Roster;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Invites;

/// What the server does with invitations: the store, plus redeeming one for a new account (in-band or on the web
/// page), which subscribes the account and its inviter to each other.
public sealed class InviteService(
    InviteStore store,
    AccountService accounts,
    IRosterService rosters,
    AdminSet admins,
    XmppServerOptionsAccessor options,
    ILogger<InviteService> logger)
{
    public InviteStore Store => store;

    public XmppServerOptions Options => options.Value;

    public TimeSpan DefaultLifetime => TimeSpan.FromDays(options.Value.Invites.DefaultExpiryDays);

    /// A valid invitation that may create an account here.
    public async ValueTask<Invite?> FindForAccountAsync(string domain, string? token) =>
        await store.FindAsync(domain, token) is { CreatesAccount: true } invite ? invite : null;

    public enum SignUpResult { Created, InvalidInvite, Taken }

    /// Takes one use of the invitation, creates the account and subscribes it with the inviter; the use is given
    /// back when the username is taken, so a typo does not spend a single-use invitation.
    public async ValueTask<SignUpResult> CreateAccountAsync(string domain, string token, string username, string password)
    {
        var invite = await store.TryUseAsync(domain, token, i => i.CreatesAccount);
        if (invite is null) return SignUpResult.InvalidInvite;
        if (!await accounts.CreateAsync(username, password))
        {
            await store.ReturnAsync(invite);
            return SignUpResult.Taken;
        }
        logger.LogInformation("Account {User} created with an invitation from {Inviter}", username, invite.Inviter ?? "the server");
        if (invite.GrantsAdmin) await admins.GrantAsync(Jid.Create(username, domain), "registered with an invitation that grants admin");
        if (invite.Inviter is not null) await SubscribeBothAsync(Jid.Create(username, domain), Jid.Parse(invite.Inviter));
        return SignUpResult.Created;
    }

    /// Makes the two local accounts each other's contacts with subscription 'both' (XEP-0401 §3: the invitee ends up
    /// in the inviter's roster and the other way round, with no request for either to answer). Both records change
    /// through the roster service, so the inviter's online clients get the roster push (RFC 6121 §2.1.6).
    public async ValueTask SubscribeBothAsync(Jid invitee, Jid inviter)
    {
        if (inviter.Local is null || !await accounts.ExistsAsync(inviter.Local)) return;
        await rosters.ChangeAsync(inviter, invitee, item => Both(item, invitee));
        await rosters.ChangeAsync(invitee, inviter, item => Both(item, inviter));
    }

    private static RosterItem Both(RosterItem? item, Jid contact) =>
        (item ?? new RosterItem(contact.ToString(), null, Array.Empty<string>(), Subscription.None,
            AskOut: false, PendingIn: false, PreApproved: false, InRoster: true))
        with { Subscription = Subscription.Both, AskOut = false, PendingIn = false, PendingInStatus = null, PreApproved = false, InRoster = true };
}
