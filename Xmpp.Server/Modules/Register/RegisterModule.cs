// XEP-0077: In-Band Registration: account creation (off by default), password change and account removal.
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Precis;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Invites;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Register;

[Xep("XEP-0077", "2.4", "registration off by default; password change and removal for logged-in users")]
public sealed class RegisterModule(
    AccountService accounts,
    ISessionDirectory directory,
    XmppServerOptionsAccessor options,
    TimeProvider time,
    InviteService invites,
    ILogger<RegisterModule> logger) : IXmppModule
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _lastByIp = new(StringComparer.Ordinal);

    public void Register(IModuleBuilder module)
    {
        module.ServerFeature(Ns.Register);
        module.StreamFeature(StreamFeatureStage.PreAuth, _ =>
            options.Value.Registration.AllowRegistration ? new Element("register", Ns.RegisterFeature) : null);
        module.Iq(IqTarget.Stream, "query", Ns.Register, Unauthenticated);
        module.Iq(IqTarget.Server, "query", Ns.Register, Authenticated);
        module.Iq(IqTarget.Self, "query", Ns.Register, Authenticated);
    }

    private static Element Form(string? username)
    {
        var query = new Element("query", Ns.Register);
        if (username is not null) query.Add(new Element("registered", Ns.Register));
        query.Add(new Element("instructions", Ns.Register).SetText("Choose a username and password."));
        query.Add(new Element("username", Ns.Register).SetText(username));
        query.Add(new Element("password", Ns.Register));
        return query;
    }

    /// XEP-0077 §3.1: registration of a new account before authentication; with a XEP-0445 invitation token presented
    /// on this stream, also when open registration is off.
    private async ValueTask Unauthenticated(IqContext c)
    {
        var o = options.Value.Registration;
        string? token = null;
        c.StreamState?.TryGetValue(InvitesModule.StreamTokenKey, out token);
        if (!o.AllowRegistration && token is null)
        {
            c.Error(StanzaErrors.ServiceUnavailable, "Registration is disabled on this server");
            return;
        }
        if (c.IsGet)
        {
            c.Result(Form(null));
            return;
        }
        var username = c.Payload.ChildText("username", Ns.Register);
        var password = c.Payload.ChildText("password", Ns.Register);
        if (string.IsNullOrEmpty(username) || string.IsNullOrEmpty(password))
        {
            c.Error(StanzaErrors.NotAcceptable, "Both username and password are required");
            return;
        }
        string user;
        try { user = Precis.EnforceUsernameCaseMapped(username); Jid.Create(user, "example.org"); }
        catch (FormatException)
        {
            c.Error(StanzaErrors.JidMalformed, "That username is not allowed");
            return;
        }
        if (password.Length < o.MinPasswordLength)
        {
            c.Error(StanzaErrors.NotAcceptable, $"The password needs at least {o.MinPasswordLength} characters");
            return;
        }
        if (token is not null)
        {
            // The invitation bounds how many accounts it makes, so the per-address pause does not apply.
            switch (await invites.CreateAccountAsync(c.To.Domain, token, user, password))
            {
                case InviteService.SignUpResult.Created:
                    c.StreamState!.Remove(InvitesModule.StreamTokenKey);
                    c.Result();
                    return;
                case InviteService.SignUpResult.Taken:
                    c.Error(StanzaErrors.Conflict, "That username is taken");
                    return;
                default:
                    c.StreamState!.Remove(InvitesModule.StreamTokenKey);
                    c.Error(StanzaErrors.Forbidden, "The invitation is no longer valid");
                    return;
            }
        }
        var ip = c.RemoteAddress ?? "unknown";
        var now = time.GetUtcNow();
        if (_lastByIp.TryGetValue(ip, out var last) && now - last < TimeSpan.FromSeconds(o.MinSecondsBetweenPerIp))
        {
            // XEP-0077 §3.1: too many registrations from one address.
            c.Error(StanzaErrors.ResourceConstraint, "Too many registrations from your address; try again later", "wait");
            return;
        }
        if (!await accounts.CreateAsync(user, password))
        {
            c.Error(StanzaErrors.Conflict, "That username is taken");
            return;
        }
        _lastByIp[ip] = now;
        logger.LogInformation("Account {User} registered in-band from {Ip}", user, ip);
        c.Result();
    }

    /// XEP-0077 §3.2 (removal) and §3.3 (password change) for a logged-in user.
    private async ValueTask Authenticated(IqContext c)
    {
        var user = c.From.Local!;
        if (c.IsGet)
        {
            c.Result(Form(user));
            return;
        }
        if (c.Payload.Child("remove", Ns.Register) is not null)
        {
            c.Result();
            await accounts.DeleteAsync(user);
            foreach (var e in directory.Get(c.From.Bare).Entries)
                e.Sink.Close(StreamErrors.NotAuthorized, "The account has been removed");
            return;
        }
        var username = c.Payload.ChildText("username", Ns.Register);
        var password = c.Payload.ChildText("password", Ns.Register);
        if (string.IsNullOrEmpty(password))
        {
            c.Error(StanzaErrors.BadRequest, "A new password is required");
            return;
        }
        if (username is not null && !SameUser(username, user))
        {
            c.Error(StanzaErrors.NotAllowed, "You can only change your own password");
            return;
        }
        if (password.Length < options.Value.Registration.MinPasswordLength)
        {
            c.Error(StanzaErrors.NotAcceptable, $"The password needs at least {options.Value.Registration.MinPasswordLength} characters");
            return;
        }
        await accounts.ChangePasswordAsync(user, password);
        c.Result();
    }

    private static bool SameUser(string given, string user)
    {
        try { return Precis.EnforceUsernameCaseMapped(given) == user; }
        catch (FormatException) { return false; }
    }
}
