// XEP-0215: External Service Discovery, with TURN credentials by the TURN REST API convention
// (draft-uberti-behave-turn-rest-00 §2.2, as coturn's use-auth-secret implements it).
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.ExternalServices;

/// Tells clients the configured STUN and TURN servers. TURN servers with a shared secret get per-user credentials that
/// expire: username "EXPIRY:user@domain", password base64(HMAC-SHA1(secret, username)), checked by the TURN server
/// itself with the same secret, so nothing is stored here. Nothing is announced when no service is configured.
[Xep("XEP-0215", "1.0.0")]
public sealed class ExternalServicesModule(XmppServerOptions options, ServedDomains domains, TimeProvider time) : IXmppModule
{
    private ExternalServicesOptions Config => options.ExternalServices;

    public void Register(IModuleBuilder module)
    {
        if (Config.Services.Count == 0) return;
        module.ServerFeature(Ns.ExtDisco);
        module.Iq(IqTarget.Server, "services", Ns.ExtDisco, Services);
        module.Iq(IqTarget.Server, "credentials", Ns.ExtDisco, Credentials);
    }

    /// The TURN REST API pair for a user, valid until expires.
    public static (string Username, string Password) TurnCredentials(string secret, string user, DateTimeOffset expires)
    {
        var username = expires.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) + ":" + user;
        var password = Convert.ToBase64String(HMACSHA1.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(username)));
        return (username, password);
    }

    private ValueTask Services(IqContext c)
    {
        if (!Allowed(c)) return ValueTask.CompletedTask;
        // §3.2: a type narrows the list to that type.
        var type = c.Payload.Attr("type");
        var result = new Element("services", Ns.ExtDisco);
        if (type is not null) result.SetAttr("type", type);
        foreach (var service in Config.Services)
            if (type is null || string.Equals(service.Type, type, StringComparison.OrdinalIgnoreCase))
                result.Add(Describe(service, c.From.Bare.ToString()));
        c.Result(result);
        return ValueTask.CompletedTask;
    }

    private ValueTask Credentials(IqContext c)
    {
        if (!Allowed(c)) return ValueTask.CompletedTask;
        // §3.3: the service is named by host and type, and port when one host offers several.
        var wanted = c.Payload.Child("service", Ns.ExtDisco);
        var host = wanted?.Attr("host");
        var type = wanted?.Attr("type");
        if (string.IsNullOrEmpty(host) || string.IsNullOrEmpty(type))
        {
            c.Error(StanzaErrors.BadRequest, "credentials are requested for a service with host and type");
            return ValueTask.CompletedTask;
        }
        var port = wanted!.Attr("port");
        var result = new Element("credentials", Ns.ExtDisco);
        foreach (var service in Config.Services)
        {
            if (service.Secret.Length == 0 || !string.Equals(service.Host, host, StringComparison.OrdinalIgnoreCase)
                || !string.Equals(service.Type, type, StringComparison.OrdinalIgnoreCase)) continue;
            if (port is not null && port != service.Port.ToString(CultureInfo.InvariantCulture)) continue;
            result.Add(Describe(service, c.From.Bare.ToString()));
        }
        if (result.IsEmpty) c.Error(StanzaErrors.ItemNotFound, "no service with credentials matches");
        else c.Result(result);
        return ValueTask.CompletedTask;
    }

    private bool Allowed(IqContext c)
    {
        if (!c.IsGet) c.Error(StanzaErrors.BadRequest, "services and credentials are requested with type get");
        // Credentials are for this server's users only.
        else if (c.From.Local is null || !domains.IsLocal(c.From)) c.Error(StanzaErrors.Forbidden);
        else return true;
        return false;
    }

    private Element Describe(ExternalServiceOptions service, string user)
    {
        var e = new Element("service", Ns.ExtDisco)
            .SetAttr("type", service.Type)
            .SetAttr("host", service.Host)
            .SetAttr("port", service.Port.ToString(CultureInfo.InvariantCulture))
            .SetAttr("transport", service.Transport);
        if (service.Name.Length > 0) e.SetAttr("name", service.Name);
        if (service.Secret.Length > 0)
        {
            var expires = time.GetUtcNow().AddSeconds(Config.CredentialLifetimeSeconds);
            var (username, password) = TurnCredentials(service.Secret, user, expires);
            // XEP-0082 dateTime in UTC.
            e.SetAttr("username", username).SetAttr("password", password).SetAttr("restricted", "1")
                .SetAttr("expires", expires.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        }
        return e;
    }
}
