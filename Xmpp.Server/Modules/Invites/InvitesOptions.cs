namespace Xmpp.Server.Modules.Invites;

/// Xmpp:Invites: invitations (XEP-0401, XEP-0379, XEP-0445) and their web pages on the HTTPS port.
public sealed class InvitesOptions
{
    /// Lifetime of an invitation when its creator names none (the CLI's --expires, the ad-hoc commands).
    public int DefaultExpiryDays { get; set; } = 7;

    /// Contact invitations that local users create (ad-hoc 'urn:xmpp:invite#invite') may also register an account
    /// here. Off by default: with it on, every user can let others onto the server.
    public bool UsersMayInviteAccounts { get; set; }

    /// The /invite/TOKEN landing and sign-up pages and the /password page (needs Xmpp:HttpPort).
    public bool WebPages { get; set; } = true;

    /// Form submissions (sign-up, password change) one IP address may make per minute.
    public int PostsPerMinutePerIp { get; set; } = 10;
}
