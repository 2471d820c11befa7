// Announcements to online users and the message of the day (XEP-0133 §4.23-§4.26), by ad-hoc command or by a message
// to DOMAIN/announce/online and DOMAIN/announce/motd[/update|/delete], which Gajim's admin menu sends.
using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Announce;

/// An announcement goes at once, as a headline from the domain, to every available resource of the domain's users
/// (not spooled: whoever is offline misses it). The message of the day is kept per domain and sent once to each
/// account at its next login (remembered per account, so a phone that reconnects all day sees it once); setting a
/// new one shows it to everyone again, editing it does not (XEP-0133 §4.25).
[Xep("XEP-0133", "1.3.1", "announce, set-motd, edit-motd, delete-motd")]
public sealed class AnnounceModule(AdHocCommands commands, AdHocModule adhoc, ISessionDirectory directory, IRouter router,
    IStorage storage, Caching.ICacheInvalidation invalidation, ILogger<AnnounceModule> logger) : IXmppModule
{
    private const string MotdKey = "announce:motd";
    private const string SeenKey = "announce:motd-seen";

    /// The key-value owner of a domain's message: '@' cannot occur in a username, so no account shares it.
    private static string Owner(string domain) => "@" + domain;

    private sealed record Motd(string Id, string Text);

    /// Per domain, the stored message of the day once read (null: none). Set or deleted by an admin on any node,
    /// which tells the others to drop the domain's entry (rarely written; a load overlapping a drop keeps nothing).
    private readonly ConcurrentDictionary<string, Motd?> _motd = new(StringComparer.Ordinal);
    private long _drops;

    /// The name under which message-of-the-day changes are announced to the other nodes of a cluster.
    public const string CacheName = "motd";

    private void Dropped(string? domain)
    {
        Interlocked.Increment(ref _drops);
        if (domain is null) _motd.Clear();
        else _motd.TryRemove(domain, out _);
    }

    public void Register(IModuleBuilder module)
    {
        invalidation.Subscribe(CacheName, Dropped);
        Add("announce", "Send Announcement to Online Users",
            _ => ServiceAdminModule.Form("Making an announcement",
                ServiceAdminModule.Field("subject", "text-single", "Subject"),
                ServiceAdminModule.Field("announcement", "text-multi", "Announcement", required: true)),
            async (r, f) =>
            {
                var text = Text(f!, "announcement");
                if (text is null) return AdHocResult.Failed("The announcement is empty");
                int sent = await AnnounceAsync(r.Domain, f!.Value("subject"), text);
                return AdHocResult.Done($"Announcement sent to {sent} online resource(s)");
            });
        Add("set-motd", "Set Message of the Day",
            _ => ServiceAdminModule.Form("Setting the message of the day",
                ServiceAdminModule.Field("motd", "text-multi", "Message of the day", required: true)),
            async (r, f) => Text(f!, "motd") is { } text
                ? AdHocResult.Done($"Message of the day set; sent to {await SetMotdAsync(r.Domain, text, fresh: true)} online resource(s)")
                : AdHocResult.Failed("The message of the day is empty"));
        commands.Add(new AdHocCommand(ServiceAdminModule.Prefix + "edit-motd", "Edit Message of the Day", CommandAccess.Admins,
            async r =>
            {
                var form = ServiceAdminModule.Form("Editing the message of the day",
                    ServiceAdminModule.Field("motd", "text-multi", "Message of the day", required: true));
                if (await CurrentAsync(r.Domain) is { } motd)
                {
                    var field = form.Element.Elements("field", Ns.DataForms).Last();
                    foreach (var line in motd.Text.Split('\n')) field.Add(new Element("value", Ns.DataForms).SetText(line));
                }
                return form;
            },
            async (r, f) => Text(f!, "motd") is { } text
                ? AdHocResult.Done($"Message of the day changed; sent to {await SetMotdAsync(r.Domain, text, fresh: false)} online resource(s)")
                : AdHocResult.Failed("The message of the day is empty")));
        Add("delete-motd", "Delete Message of the Day", null, async (r, _) =>
        {
            await DeleteMotdAsync(r.Domain);
            return AdHocResult.Done("Message of the day deleted");
        });
        module.Hook(HookPoint.Inbound, 50, AnnounceByMessageAsync);
        module.OnSessionAvailable(ShowMotdAsync);
        module.OnAccountDeleted(async user => await storage.KeyValue.DeleteAsync(user, SeenKey));
    }

    private void Add(string name, string label, Func<AdHocRequest, DataForm>? form, Func<AdHocRequest, DataForm?, ValueTask<AdHocResult>> run) =>
        commands.Add(ServiceAdminModule.Prefix + name, label, CommandAccess.Admins, form, run);

    /// A text-multi field's lines joined with newlines (XEP-0004 §3.3), or null when empty.
    private static string? Text(DataForm form, string var)
    {
        var text = string.Join("\n", form.Values(var)).Trim();
        return text.Length > 0 ? text : null;
    }

    /// Messages to DOMAIN/announce/...: the old jabberd convention that Gajim's "Send Server Message" and "Set MOTD" use.
    private async ValueTask<bool> AnnounceByMessageAsync(StanzaContext c)
    {
        if (c.Name != "message" || c.To is not { Local: null, Resource: { } resource } to
            || !resource.StartsWith("announce/", StringComparison.Ordinal) || c.Type == "error") return false;
        if (!adhoc.IsAdmin(c.From) || c.From.Domain != to.Domain)
        {
            await router.BounceAsync(c.Stanza, StanzaErrors.Forbidden, "Only administrators may make announcements");
            return true;
        }
        var body = c.Stanza.ChildText("body", Ns.Client)?.Trim();
        var subject = c.Stanza.ChildText("subject", Ns.Client);
        switch (resource)
        {
            case "announce/online" when body is { Length: > 0 }:
                await AnnounceAsync(to.Domain, subject, body);
                break;
            case "announce/motd" when body is { Length: > 0 }:
                await SetMotdAsync(to.Domain, body, fresh: true);
                break;
            case "announce/motd/update" when body is { Length: > 0 }:
                await SetMotdAsync(to.Domain, body, fresh: false);
                break;
            case "announce/motd/delete":
                await DeleteMotdAsync(to.Domain);
                break;
            default:
                await router.BounceAsync(c.Stanza, StanzaErrors.BadRequest, "Unknown announcement, or no body");
                break;
        }
        return true;
    }

    private async ValueTask<int> AnnounceAsync(string domain, string? subject, string text)
    {
        int sent = 0;
        foreach (var entry in directory.All().Where(e => e.Available && e.Jid.Domain == domain).ToList())
            if (await router.DeliverAsync(entry, Message(domain, entry.Jid, subject, text, "headline"))) sent++;
        logger.LogInformation("Announcement to {Count} resources of {Domain}", sent, domain);
        return sent;
    }

    private static Element Message(string domain, Jid to, string? subject, string text, string type)
    {
        var message = new Element("message", Ns.Client).SetAttr("from", domain).SetAttr("to", to.ToString()).SetAttr("type", type);
        if (!string.IsNullOrWhiteSpace(subject)) message.Add(new Element("subject", Ns.Client).SetText(subject));
        return message.Add(new Element("body", Ns.Client).SetText(text));
    }

    private async ValueTask<Motd?> CurrentAsync(string domain)
    {
        if (_motd.TryGetValue(domain, out var known)) return known;
        long drops = Volatile.Read(ref _drops);
        var bytes = await storage.KeyValue.GetAsync(Owner(domain), MotdKey);
        var motd = bytes is null ? null : JsonSerializer.Deserialize<Motd>(bytes);
        var kept = _motd.GetOrAdd(domain, motd);
        if (Volatile.Read(ref _drops) != drops) _motd.TryRemove(new KeyValuePair<string, Motd?>(domain, kept));
        return kept;
    }

    /// Stores the message and shows it to everyone online now, marked as seen for them. A fresh one gets a new id,
    /// so every account sees it at its next login; an edit keeps the id, so those who saw the old one are not shown it.
    private async ValueTask<int> SetMotdAsync(string domain, string text, bool fresh)
    {
        var id = !fresh && await CurrentAsync(domain) is { } current ? current.Id : Guid.NewGuid().ToString("N");
        var motd = new Motd(id, text);
        await storage.KeyValue.SetAsync(Owner(domain), MotdKey, JsonSerializer.SerializeToUtf8Bytes(motd));
        _motd[domain] = motd;
        await invalidation.ChangedAsync(CacheName, domain);
        int sent = 0;
        foreach (var entry in directory.All().Where(e => e.Available && e.Jid.Domain == domain).ToList())
        {
            if (await router.DeliverAsync(entry, Message(domain, entry.Jid, "Message of the day", text, "normal"))) sent++;
            await MarkSeenAsync(entry.Jid.Local!, id);
        }
        logger.LogInformation("Message of the day of {Domain} set", domain);
        return sent;
    }

    private async ValueTask DeleteMotdAsync(string domain)
    {
        await storage.KeyValue.DeleteAsync(Owner(domain), MotdKey);
        _motd[domain] = null;
        await invalidation.ChangedAsync(CacheName, domain);
        logger.LogInformation("Message of the day of {Domain} deleted", domain);
    }

    private ValueTask MarkSeenAsync(string user, string id) => storage.KeyValue.SetAsync(user, SeenKey, System.Text.Encoding.UTF8.GetBytes(id));

    /// At initial presence: the message of the day, once per account and message. Without one (the usual case) a
    /// login costs nothing here once the domain's entry is cached.
    private async ValueTask ShowMotdAsync(ISession session)
    {
        if (await CurrentAsync(session.Jid.Domain) is not { } motd) return;
        var user = session.Jid.Local!;
        var seen = await storage.KeyValue.GetAsync(user, SeenKey);
        if (seen is not null && System.Text.Encoding.UTF8.GetString(seen) == motd.Id) return;
        await MarkSeenAsync(user, motd.Id);
        session.Send(Message(session.Jid.Domain, session.Jid, "Message of the day", motd.Text, "normal"));
    }
}
