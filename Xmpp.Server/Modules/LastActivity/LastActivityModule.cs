// XEP-0012: Last Activity, as "last seen" for accounts and uptime for the server.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.LastActivity;

/// Answers jabber:iq:last for an account's bare JID on the user's behalf: zero while a resource is available,
/// otherwise the time since the last logout and the status text sent then; only to those allowed to see the
/// user's presence. Sent to the server's domain it answers the server's uptime. Queries to a full JID reach
/// the client itself through the router.
[Xep("XEP-0012", "2.0")]
public sealed class LastActivityModule(
    AccountService accounts,
    IRosterService rosters,
    ISessionDirectory directory,
    TimeProvider time) : IXmppModule
{
    // The module is built with the server, so its creation marks the start of the uptime.
    private readonly long _started = time.GetTimestamp();

    public void Register(IModuleBuilder module)
    {
        module.ServerFeature(Ns.LastActivity);
        module.Iq(IqTarget.Server, "query", Ns.LastActivity, ServerAsync);
        // No Self handler: the router hands a query to one's own bare JID to this one.
        module.Iq(IqTarget.Account, "query", Ns.LastActivity, AccountAsync);
    }

    /// XEP-0012 §5: for a server the seconds are its uptime, with no text.
    private ValueTask ServerAsync(IqContext c)
    {
        if (!c.IsGet)
        {
            c.Error(StanzaErrors.BadRequest);
            return ValueTask.CompletedTask;
        }
        c.Result(Query((long)time.GetElapsedTime(_started).TotalSeconds, null));
        return ValueTask.CompletedTask;
    }

    private async ValueTask AccountAsync(IqContext c)
    {
        if (!c.IsGet)
        {
            c.Error(StanzaErrors.BadRequest);
            return;
        }
        var user = c.To.Bare;
        var requester = c.From.Bare;
        // XEP-0012 §3 and §8: only entities allowed to see the user's presence learn when the user was last
        // online; an account always sees its own presence (RFC 6121 §4.2.2).
        if (requester != user
            && await rosters.FindAsync(user, requester) is not { InRoster: true, Subscription: Subscription.From or Subscription.Both })
        {
            c.Error(StanzaErrors.Forbidden);
            return;
        }
        // §3: "If the user has at least one available resource ... 'seconds' attribute set to a value of '0'".
        if (directory.Get(user).Available().Any())
        {
            c.Result(Query(0, null));
            return;
        }
        var account = await accounts.FindAsync(user.Local!);
        if (account?.LastLogout is not { } logout)
        {
            // Never logged out since accounts recorded it: there is no last activity to report.
            c.Error(StanzaErrors.ItemNotFound);
            return;
        }
        var seconds = Math.Max(0, (long)(time.GetUtcNow() - logout).TotalSeconds);
        c.Result(Query(seconds, account.LastStatus));
    }

    private static Element Query(long seconds, string? status)
    {
        var query = new Element("query", Ns.LastActivity).SetAttr("seconds", seconds.ToString(CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(status)) query.SetText(status);
        return query;
    }
}
