// XEP-0357: Push Notifications — the account side: clients enable and disable their app servers' push services.
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Push;

/// Keeps each account's enabled push services (service JID, node, publish options) across restarts, and has
/// PushNotifier publish to them when a message arrives for an account with no active session. 'urn:xmpp:push:0' is
/// announced on the account (§4.1) only while publishing is on (Xmpp:Push:Enabled).
[Xep("XEP-0357", "0.4.1")]
public sealed class PushModule(PushRegistrations registrations, PushNotifier notifier, XmppServerOptions options, TimeProvider time) : IXmppModule
{
    /// Runs after the hooks that may hold or drop a message (message requests at 50), so only delivered ones notify.
    public const int HookOrder = 1000;

    /// Enabled services per account; one per app and device is typical.
    public const int MaxPerAccount = 10;

    /// Publish-options fields and total characters accepted per registration.
    public const int MaxFields = 16;
    public const int MaxOptionChars = 4096;

    public void Register(IModuleBuilder module)
    {
        module.Iq(IqTarget.Self, "enable", Ns.Push, EnableAsync);
        module.Iq(IqTarget.Self, "disable", Ns.Push, DisableAsync);
        module.OnAccountDeleted(user =>
        {
            notifier.Forget(user);
            return registrations.DeleteAllAsync(user);
        });
        if (!options.Push.Enabled) return;
        module.AccountFeature(Ns.Push);
        module.Hook(HookPoint.InboundMessage, HookOrder, notifier.OnMessageAsync);
        module.OnSessionDetached(notifier.OnDetachedAsync);
    }

    /// §5: jid is required, node should be there, an optional form of type pubsub#publish-options carries credentials.
    private async ValueTask EnableAsync(IqContext c)
    {
        if (!c.IsSet || c.Origin is null) { c.Error(StanzaErrors.BadRequest); return; }
        if (!TryService(c, out var service)) return;
        var node = c.Payload.Attr("node");
        var options = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        if (c.Payload.Child("x", Ns.DataForms) is { } form && !TryReadOptions(c, form, options)) return;
        var registration = new PushRegistration(service, string.IsNullOrEmpty(node) ? null : node, options, time.GetUtcNow());
        if (!await registrations.EnableAsync(c.From.Local!, registration, MaxPerAccount))
        {
            c.Error(StanzaErrors.ResourceConstraint, $"At most {MaxPerAccount} push services per account");
            return;
        }
        c.Result();
    }

    /// §6: without node every entry of the service goes; with node only that one. Disabling what is not enabled is no error.
    private async ValueTask DisableAsync(IqContext c)
    {
        if (!c.IsSet || c.Origin is null) { c.Error(StanzaErrors.BadRequest); return; }
        if (!TryService(c, out var service)) return;
        var node = c.Payload.Attr("node");
        await registrations.DisableAsync(c.From.Local!, service, string.IsNullOrEmpty(node) ? null : node);
        notifier.Forget(c.From.Local!, service);
        c.Result();
    }

    private static bool TryService(IqContext c, out string service)
    {
        service = "";
        var jid = c.Payload.Attr("jid");
        if (string.IsNullOrEmpty(jid)) { c.Error(StanzaErrors.BadRequest, "The 'jid' of the push service is required"); return false; }
        if (!Jid.TryParse(jid, out var parsed)) { c.Error(StanzaErrors.JidMalformed); return false; }
        service = parsed.ToString();
        return true;
    }

    private static bool TryReadOptions(IqContext c, Element form, Dictionary<string, List<string>> options)
    {
        var type = form.Attr("type");
        if (type is not (null or "submit"))
        {
            c.Error(StanzaErrors.BadRequest, "Publish options are a submitted form");
            return false;
        }
        int chars = 0;
        string? formType = null;
        foreach (var field in form.Elements("field", Ns.DataForms))
        {
            var name = field.Attr("var");
            var values = field.Elements("value", Ns.DataForms).Select(v => v.Text).ToList();
            if (name == "FORM_TYPE") { formType = values.FirstOrDefault(); continue; }
            if (string.IsNullOrEmpty(name)) { c.Error(StanzaErrors.BadRequest, "A field without 'var'"); return false; }
            chars += name.Length + values.Sum(v => v.Length);
            options[name] = values;
        }
        // §5: the form's FORM_TYPE is pubsub#publish-options (XEP-0004 §3.4 hidden field).
        if (formType != Ns.PubSubPublishOptions)
        {
            c.Error(StanzaErrors.BadRequest, "The form's FORM_TYPE must be " + Ns.PubSubPublishOptions);
            return false;
        }
        if (options.Count > MaxFields || chars > MaxOptionChars)
        {
            c.Error(StanzaErrors.NotAcceptable, "The publish options are too large");
            return false;
        }
        return true;
    }
}
