using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Invites;

/// The two ways an invitation travels: the web page (for people without a client yet) and the xmpp: URI that a
/// client opens (XEP-0401 §3, XEP-0379 §2, RFC 5122 query components 'register' and 'roster').
public static class InviteLinks
{
    /// https://DOMAIN:HttpPort/invite/TOKEN, or under Xmpp:Http:PublicUrl when the server sits behind a proxy.
    public static string PageUrl(XmppServerOptions options, string domain, string token) => BaseUrl(options, domain) + "/invite/" + token;

    public static string BaseUrl(XmppServerOptions options, string domain)
    {
        if (options.Http.PublicUrl.Length > 0) return options.Http.PublicUrl.TrimEnd('/');
        return options.HttpPort == 443 ? $"https://{domain}" : $"https://{domain}:{options.HttpPort}";
    }

    /// An account invitation without an inviter registers at the domain; one with an inviter, and every contact
    /// invitation, adds the inviter, and 'ibr=y' tells the client it may register here with the same token.
    public static string XmppUri(Invite invite, string token) => invite.Inviter is null
        ? $"xmpp:{invite.Domain}?register;preauth={token}"
        : $"xmpp:{invite.Inviter}?roster;preauth={token}" + (invite.CreatesAccount ? ";ibr=y" : "");
}
