// XEP-0357: Push Notifications — the publishing side: wake a sleeping device through its app server.
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Push;

/// Publishes a notification to each push service an account enabled when a message worth one arrives and no session
/// of the account is active: none is bound, or every one waits detached under stream management. The publish is an
/// IQ like any other, routed from the account's bare JID to the app server (over s2s or to a component) (§7).
/// Per registration at most one notification goes out per interval; what arrives in between is counted into the
/// next one. Errors from the app server are counted and the registration is disabled after too many, or at once for
/// a permanent one, as Prosody's mod_cloud_notify does. The counters are node-local: after a restart or on another
/// node a registration starts with a clean slate, which only delays a disable.
public sealed class PushNotifier(
    PushRegistrations registrations,
    ISessionDirectory directory,
    IRouter router,
    XmppServerOptions options,
    ILogger<PushNotifier> logger)
{
    /// Errors after which the app server will not accept this registration again (RFC 6120 §8.3.3, XEP-0060 §7.1.3).
    private static readonly HashSet<string> Permanent = new(StringComparer.Ordinal)
    {
        StanzaErrors.ItemNotFound, "gone", StanzaErrors.NotAuthorized, StanzaErrors.Forbidden, "registration-required", StanzaErrors.NotAllowed,
    };

    private sealed class Device
    {
        public readonly object Gate = new();
        public long LastSent = long.MinValue;
        public int Pending;
        public string? LastSender;
        public string? LastBody;
        public bool FlushScheduled;
        public int Errors;
        public readonly Queue<string> Recent = new(); // "from|id" of messages already counted, for reroutes
    }

    private readonly ConcurrentDictionary<(string User, string Jid, string? Node), Device> _devices = new();
    private long _published;
    private long _failed;
    private PushOptions O => options.Push;

    public long Published => Interlocked.Read(ref _published);
    public long Failed => Interlocked.Read(ref _failed);

    /// The InboundMessage hook: never takes the message, only notes it.
    public async ValueTask<bool> OnMessageAsync(StanzaContext c)
    {
        if (!O.Enabled || c.To?.Local is null || !IsWorthy(c.Stanza)) return false;
        var account = c.To.Bare;
        if (HasActiveSession(account)) return false;
        IReadOnlyList<PushRegistration> list;
        try { list = await registrations.GetAsync(account.Local!); }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "push: could not read the registrations of {Account}", account);
            return false;
        }
        if (list.Count == 0) return false;
        var sender = c.From.ToString();
        // The body only when the operator allows it, and never an encrypted message's fallback text.
        string? body = O.IncludeBody && !IsEncrypted(c.Stanza) ? c.Stanza.ChildText("body", Ns.Client) : null;
        var key = sender + "|" + (c.Stanza.Attr("id") ?? "");
        foreach (var registration in list) Note(account, registration, sender, body, c.Stanza.Attr("id") is null ? null : key);
        return false;
    }

    /// A session just lost its connection: what it was sent and never acknowledged did not reach the device, so
    /// those messages notify now if no other session is active (as mod_cloud_notify does on smacks hibernation).
    public async ValueTask OnDetachedAsync(ISession session, IReadOnlyList<Element> unacknowledged)
    {
        if (!O.Enabled) return;
        var account = session.Jid.Bare;
        if (HasActiveSession(account)) return;
        var missed = unacknowledged.Where(s => s.Name == "message" && IsWorthy(s)).ToList();
        if (missed.Count == 0) return;
        var list = await registrations.GetAsync(account.Local!);
        foreach (var stanza in missed)
        {
            var sender = stanza.Attr("from") ?? account.Domain;
            string? body = O.IncludeBody && !IsEncrypted(stanza) ? stanza.ChildText("body", Ns.Client) : null;
            var key = stanza.Attr("id") is { } id ? sender + "|" + id : null;
            foreach (var registration in list) Note(account, registration, sender, body, key);
        }
    }

    /// A body, an OMEMO-encrypted payload, or a groupchat message (the detached session is an occupant of the room,
    /// and mentions reach absent members as messages with a body).
    internal static bool IsWorthy(Element stanza)
    {
        var type = stanza.Attr("type");
        if (type is "error" or "headline") return false;
        if (!string.IsNullOrWhiteSpace(stanza.ChildText("body", Ns.Client))) return true;
        return IsEncrypted(stanza);
    }

    private static bool IsEncrypted(Element stanza) =>
        stanza.Child("encrypted", Ns.OmemoLegacy) is not null || stanza.Child("encrypted", Ns.Omemo2) is not null;

    /// Active means bound with a live connection; detached sessions and no session at all both count as asleep.
    private bool HasActiveSession(Jid account)
    {
        foreach (var entry in directory.Get(account).Entries)
            if (!entry.Sink.IsDetached) return true;
        return false;
    }

    private void Note(Jid account, PushRegistration registration, string sender, string? body, string? messageKey)
    {
        var device = _devices.GetOrAdd((account.Local!, registration.Jid, registration.Node), _ => new Device());
        long now = Environment.TickCount64, interval = O.MinIntervalSeconds * 1000L;
        (int Count, string? Sender, string? Body)? sendNow = null;
        lock (device.Gate)
        {
            if (messageKey is not null)
            {
                // A message given back by an expired session is routed again; it was counted once already.
                if (device.Recent.Contains(messageKey)) return;
                device.Recent.Enqueue(messageKey);
                if (device.Recent.Count > 64) device.Recent.Dequeue();
            }
            device.Pending++;
            device.LastSender = sender;
            device.LastBody = body;
            if (device.FlushScheduled) return;
            if (device.LastSent == long.MinValue || now - device.LastSent >= interval)
            {
                sendNow = (device.Pending, device.LastSender, device.LastBody);
                device.Pending = 0;
                device.LastSent = now;
            }
            else
            {
                device.FlushScheduled = true;
                var wait = TimeSpan.FromMilliseconds(device.LastSent + interval - now);
                _ = FlushLaterAsync(account, registration, device, wait);
            }
        }
        if (sendNow is { } n) _ = PublishAsync(account, registration, device, n.Count, n.Sender, n.Body);
    }

    private async Task FlushLaterAsync(Jid account, PushRegistration registration, Device device, TimeSpan wait)
    {
        await Task.Delay(wait);
        (int Count, string? Sender, string? Body)? send = null;
        lock (device.Gate)
        {
            device.FlushScheduled = false;
            if (device.Pending == 0) return;
            if (HasActiveSession(account))
            {
                device.Pending = 0; // the device came back and fetched them
                return;
            }
            send = (device.Pending, device.LastSender, device.LastBody);
            device.Pending = 0;
            device.LastSent = Environment.TickCount64;
        }
        await PublishAsync(account, registration, device, send.Value.Count, send.Value.Sender, send.Value.Body);
    }

    /// §7: a pubsub publish of a notification carrying the urn:xmpp:push:summary form, with the client's publish-options.
    internal Element Notification(Jid account, PushRegistration registration, int count, string? sender, string? body)
    {
        var summary = new Element("x", Ns.DataForms).SetAttr("type", "submit")
            .Add(DataForm.Field("FORM_TYPE", "hidden", Ns.PushSummary))
            .Add(DataForm.Field("message-count", null, count.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (O.IncludeSender && sender is not null) summary.Add(DataForm.Field("last-message-sender", null, sender));
        if (body is not null) summary.Add(DataForm.Field("last-message-body", null, body));
        var publish = new Element("publish", Ns.PubSub)
            .Add(new Element("item", Ns.PubSub).Add(new Element("notification", Ns.Push).Add(summary)));
        if (registration.Node is not null) publish.SetAttr("node", registration.Node);
        var pubsub = new Element("pubsub", Ns.PubSub).Add(publish);
        if (registration.PublishOptions.Count > 0)
        {
            var form = new Element("x", Ns.DataForms).SetAttr("type", "submit")
                .Add(DataForm.Field("FORM_TYPE", "hidden", Ns.PubSubPublishOptions));
            foreach (var (name, values) in registration.PublishOptions) form.Add(DataForm.Field(name, null, [.. values]));
            pubsub.Add(new Element("publish-options", Ns.PubSub).Add(form));
        }
        return new Element("iq", Ns.Client).SetAttr("type", "set").SetAttr("from", account.ToString()).SetAttr("to", registration.Jid)
            .Add(pubsub);
    }

    private async Task PublishAsync(Jid account, PushRegistration registration, Device device, int count, string? sender, string? body)
    {
        try
        {
            var reply = await router.RequestAsync(Notification(account, registration, count, sender, body), TimeSpan.FromSeconds(O.TimeoutSeconds));
            // Only the app server may answer (the router's bounce speaks for it too): an answer from anyone else who
            // guessed the id counts as no answer, so a forged item-not-found cannot disable the registration at once.
            if (reply is not null && !(Jid.TryParse(reply.Attr("from"), out var answeredBy) && Jid.TryParse(registration.Jid, out var asked) && answeredBy == asked))
            {
                logger.LogWarning("push: ignored an answer from {From} to {Account}'s notification for {Service}", reply.Attr("from"), account, registration.Jid);
                reply = null;
            }
            if (reply?.Attr("type") == "result")
            {
                Interlocked.Increment(ref _published);
                lock (device.Gate) device.Errors = 0;
                logger.LogDebug("push: notified {Service} for {Account} ({Count} messages)", registration.Jid, account, count);
                return;
            }
            Interlocked.Increment(ref _failed);
            var error = reply?.Child("error", Ns.Client);
            var condition = error?.Elements().FirstOrDefault(e => e.Namespace == Ns.StanzaErrors)?.Name;
            bool permanent = condition is not null && Permanent.Contains(condition);
            int errors;
            lock (device.Gate) errors = ++device.Errors;
            var what = reply is null ? "no answer" : condition ?? "an error";
            if (permanent || errors >= O.MaxErrors)
            {
                logger.LogInformation("push: disabling {Service} node {Node} of {Account} after {What} ({Errors} failed in a row)",
                    registration.Jid, registration.Node ?? "-", account, what, errors);
                await registrations.DisableExactAsync(account.Local!, registration.Jid, registration.Node);
                _devices.TryRemove((account.Local!, registration.Jid, registration.Node), out _);
            }
            else
                logger.LogDebug("push: {Service} answered {Account}'s notification with {What} ({Errors} in a row)", registration.Jid, account, what, errors);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "push: publishing to {Service} for {Account} failed", registration.Jid, account);
        }
    }

    /// The account was deleted or the client disabled its registrations: forget their counters.
    internal void Forget(string user, string? jid = null)
    {
        foreach (var key in _devices.Keys)
            if (key.User == user && (jid is null || key.Jid == jid)) _devices.TryRemove(key, out _);
    }
}
