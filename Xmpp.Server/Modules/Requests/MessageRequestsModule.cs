// Message requests: an account may hold chats from strangers (anyone not in its roster) until it accepts them.
using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Caching;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.AdHoc;
using Xmpp.Server.Modules.Offline;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Requests;

/// For an account that turned it on (ad-hoc command urn:xmppd:message-requests#settings, or the server default), a
/// chat or normal message from a stranger (not in the roster, not someone the account ever accepted) is not
/// delivered: it waits, durably, in a request, and the account's online resources get one headline from the server
/// saying who wants to talk. The account accepts by acting towards the stranger the way any client already can: a
/// reply, a roster item or a subscription; the waiting messages are then delivered in order with their delay stamps
/// and the stranger is remembered as accepted. Blocking the stranger (XEP-0191) throws the request away. Messages
/// from services (MUC rooms and their occupants, the server) and groupchat, headline and error messages are never held.
public sealed class MessageRequestsModule(
    IStorage storage,
    IRouter router,
    IRosterService rosters,
    ISessionDirectory directory,
    AdHocCommands commands,
    ServedDomains domains,
    XmppServerOptionsAccessor options,
    IServiceProvider services,
    ICacheInvalidation invalidation,
    ILogger<MessageRequestsModule> logger) : IXmppModule
{
    /// The name under which an account's choice and state changes are announced to the other nodes of a cluster.
    public const string CacheName = "message-requests";

    public const string Collection = "requests";
    public const string SettingsNode = "urn:xmppd:message-requests#settings";
    public const string ListNode = "urn:xmppd:message-requests#list";
    private const string StateKey = "requests:state";
    private const int MaxAccepted = 2000;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly IArchiveStore _held = storage.Archive(Collection);

    /// Per account that chose: whether requests are on. Only this module changes it.
    private readonly ConcurrentDictionary<string, bool> _enabled = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    /// Per account with requests on: its state once read, replaced by what was stored after each change this node
    /// makes, so an account's own chatting costs no storage read.
    private readonly ConcurrentDictionary<string, State> _states = new(StringComparer.Ordinal);

    // Changed by the account's own IQs and messages on whichever node it uses: another node's change drops the
    // account's entries (and makes the choices be listed again), counted so that a load overlapping it keeps nothing.
    private long _drops;

    private void Dropped(string? user)
    {
        Interlocked.Increment(ref _drops);
        if (user is null)
        {
            _enabled.Clear();
            _states.Clear();
        }
        else
        {
            _enabled.TryRemove(user, out _);
            _states.TryRemove(user, out _);
        }
        _choicesLoaded = false;
    }
    private ModuleRegistry? _registry;

    /// What an account with requests on keeps: strangers it accepted, and the waiting requests by sender.
    public sealed record State(List<string> Accepted, List<Request> Waiting);

    public sealed record Request(string From, int Count, string Preview, DateTimeOffset Since);

    private MessageRequestsOptions Options => options.Value.MessageRequests;

    // Modules depend on the registry's construction, so it is looked up on first use.
    private ModuleRegistry Registry => _registry ??= (ModuleRegistry)services.GetService(typeof(ModuleRegistry))!;

    public void Register(IModuleBuilder module)
    {
        invalidation.Subscribe(CacheName, Dropped);
        module.Hook(HookPoint.InboundMessage, 50, HoldAsync);
        module.Hook(HookPoint.Inbound, 60, WatchOwnerAsync);
        module.OnSessionAvailable(RemindAsync);
        module.OnAccountDeleted(DeleteAllAsync);
        commands.Add(new AdHocCommand(SettingsNode, "Message Requests from Strangers", CommandAccess.LocalUsers,
            async r =>
            {
                var form = new DataForm("form", SettingsNode);
                form.Element.Add(new Element("title", Ns.DataForms).SetText("Message requests"));
                form.Element.Add(new Element("instructions", Ns.DataForms).SetText(
                    "When on, messages from people who are not in your contacts wait until you reply, add them, or block them."));
                form.AddBool("enabled", "Hold messages from strangers as requests", await EnabledAsync(r.From.Local!));
                return form;
            },
            async (r, f) =>
            {
                var on = f!.Bool("enabled", out var valid);
                if (!valid || on is null) return AdHocResult.Failed("Say yes or no");
                await SetEnabledAsync(r.From.Local!, on.Value);
                return AdHocResult.Done(on.Value ? "Messages from strangers now wait as requests" : "Messages from strangers arrive directly");
            }));
        commands.Add(new AdHocCommand(ListNode, "Waiting Message Requests", CommandAccess.LocalUsers, null, async (r, _) =>
        {
            var waiting = await WaitingAsync(r.From.Local!);
            var form = new DataForm("result", ListNode);
            foreach (var w in waiting)
                form.AddField(w.From, "text-single", w.From, [$"{w.Count} message(s) since {DateTimeProfile.Format(w.Since)}: {w.Preview}"]);
            return new AdHocResult(waiting.Count == 0 ? "No requests are waiting" : $"{waiting.Count} request(s): reply, add or block", Form: form);
        }));
    }

    /// The accounts whose choice differs from the default, one document under an owner no account can have ('@' is not
    /// allowed in a username), read once: deciding whether a message is held then costs no storage read per account,
    /// which matters on every message and above all while a database server is away.
    private const string ChoicesOwner = "@message-requests";

    private async ValueTask<bool> EnabledAsync(string user)
    {
        if (_enabled.TryGetValue(user, out var on)) return on;
        try { await LoadChoicesAsync(); }
        catch (Exception ex) when (!_choicesLoaded)
        {
            // Storage away before the choices were ever read: messages take the default path now (the one every
            // account that never chose takes), and the next message tries again.
            logger.LogWarning("Message requests: the accounts' choices could not be read ({Message}); using the default for now", ex.Message);
        }
        return _enabled.TryGetValue(user, out on) ? on : Options.DefaultEnabled;
    }

    private volatile bool _choicesLoaded;
    private readonly SemaphoreSlim _choicesGate = new(1, 1);

    private async ValueTask LoadChoicesAsync()
    {
        if (_choicesLoaded) return;
        await _choicesGate.WaitAsync();
        try
        {
            // A few tries: another node's change during the listing means the listing may predate it.
            for (int attempt = 0; attempt < 3 && !_choicesLoaded; attempt++)
            {
                long drops = Volatile.Read(ref _drops);
                var choices = await storage.KeyValue.ListAsync(ChoicesOwner);
                foreach (var (user, value) in choices)
                    _enabled.TryAdd(user, value is [(byte)'1']);
                if (Volatile.Read(ref _drops) == drops) _choicesLoaded = true;
                else _enabled.Clear();
            }
        }
        finally
        {
            _choicesGate.Release();
        }
    }

    private async ValueTask SetEnabledAsync(string user, bool on)
    {
        await LoadChoicesAsync();
        await storage.KeyValue.SetAsync(ChoicesOwner, user, on ? "1"u8.ToArray() : "0"u8.ToArray());
        _enabled[user] = on;
        await invalidation.ChangedAsync(CacheName, user);
        // Turning it off lets the waiting messages through as if each had been accepted.
        if (on) return;
        foreach (var w in await WaitingAsync(user))
            await AcceptAsync(user, Jid.Parse(w.From));
    }

    private SemaphoreSlim Gate(string user) => _locks.GetOrAdd(user, static _ => new SemaphoreSlim(1, 1));

    /// The account's state as this node last knew it (the cached object: read it under the account's gate, never change
    /// it; changes go through ChangeAsync).
    private async ValueTask<State> LoadAsync(string user)
    {
        if (_states.TryGetValue(user, out var known)) return known;
        long drops = Volatile.Read(ref _drops);
        var state = await storage.KeyValue.GetAsync(user, StateKey) is { } bytes
            ? JsonSerializer.Deserialize<State>(bytes, Json)!
            : new State([], []);
        var kept = _states.GetOrAdd(user, state);
        if (Volatile.Read(ref _drops) != drops) _states.TryRemove(new KeyValuePair<string, State>(user, kept));
        return kept;
    }

    /// A copy of the account's waiting requests, taken under its gate.
    private async ValueTask<List<Request>> WaitingAsync(string user)
    {
        var gate = Gate(user);
        await gate.WaitAsync();
        try { return [.. (await LoadAsync(user)).Waiting]; }
        finally { gate.Release(); }
    }

    /// Changes the account's state in one read-modify-write of the stored document (IKeyValueStore.UpdateAsync, which
    /// PostgreSQL runs under a lock on the account's document): a change another node makes at the same moment (a
    /// stranger's message held there while the account accepts another stranger here) is read and kept, not written
    /// over. change works on the stored state and says whether it changed it; it may run more than once, so it only
    /// computes. The cached state becomes what was stored, unless another node announced a change meanwhile.
    private async ValueTask<State> ChangeAsync(string user, Func<State, bool> change)
    {
        State after = null!;
        bool changed = false;
        long drops = Volatile.Read(ref _drops);
        await storage.KeyValue.UpdateAsync(user, StateKey, stored =>
        {
            after = stored is null ? new State([], []) : JsonSerializer.Deserialize<State>(stored, Json)!;
            changed = change(after);
            return changed ? JsonSerializer.SerializeToUtf8Bytes(after, Json) : stored;
        });
        if (Volatile.Read(ref _drops) == drops) _states[user] = after;
        else _states.TryRemove(user, out _);
        if (changed) await invalidation.ChangedAsync(CacheName, user);
        return after;
    }

    /// The archive owner of one stranger's waiting messages: '/' cannot occur in a username, so it names one pair.
    private static string Owner(string user, Jid from) => user + "/" + from.Bare;

    private async ValueTask<bool> IsStrangerAsync(Jid user, Jid from, Element message, State state)
    {
        if (from.Local is null || from.Bare == user.Bare) return false;
        // Services: a room and its occupants (our MUC or any other), the server's own services.
        if (Registry.FindService(from.Domain) is not null || message.Child("x", Ns.MucUser) is not null) return false;
        if (state.Accepted.Contains(from.Bare.ToString())) return false;
        var item = await rosters.FindAsync(user.Bare, from.Bare);
        return item is null || (!item.InRoster && !item.AskOut);
    }

    /// InboundMessage: a stranger's chat or normal message to an account with requests on waits in its request.
    private async ValueTask<bool> HoldAsync(StanzaContext c)
    {
        var user = c.To!.Local!;
        if (c.Type is "error" or "groupchat" or "headline" || !OfflineModule.ShouldStore(c.Stanza)) return false;
        if (!await EnabledAsync(user)) return false;
        var gate = Gate(user);
        await gate.WaitAsync();
        bool first = false, full = false, accepted = false;
        string preview;
        try
        {
            if (!await IsStrangerAsync(c.To, c.From, c.Stanza, await LoadAsync(user))) return false;
            var from = c.From.Bare.ToString();
            preview = c.Stanza.ChildText("body", Ns.Client) is { Length: > 0 } body ? (body.Length > 140 ? body[..140] + "…" : body) : "(encrypted)";
            var since = DateTimeOffset.UtcNow;
            // The request is counted before its message is kept, so an acceptance on another node that reads the
            // stored state after this either sees the sender waiting or has made it accepted (then the message passes).
            await ChangeAsync(user, state =>
            {
                accepted = state.Accepted.Contains(from);
                if (accepted) return false; // accepted through another node since this node's copy was read
                var index = state.Waiting.FindIndex(w => w.From == from);
                first = index < 0;
                full = (first && state.Waiting.Count >= Options.MaxSendersPerAccount)
                       || (!first && state.Waiting[index].Count >= Options.MaxMessagesPerSender);
                if (full) return false;
                if (first) state.Waiting.Add(new Request(from, 1, preview, since));
                else state.Waiting[index] = state.Waiting[index] with { Count = state.Waiting[index].Count + 1 };
                return true;
            });
            if (accepted) return false;
            if (full)
            {
                await router.BounceAsync(c.Stanza, StanzaErrors.ResourceConstraint,
                    "The recipient holds messages from unknown senders as requests, and yours is full");
                return true;
            }
            var stamped = c.Stanza.Clone();
            if (stamped.Child("delay", Ns.Delay) is null)
                stamped.Add(new Element("delay", Ns.Delay).SetAttr("from", c.To.Domain).SetAttr("stamp", DateTimeProfile.Format(since)));
            await _held.AppendAsync(Owner(user, c.From), since, from, ElementWriter.ToBytes(stamped));
        }
        finally
        {
            gate.Release();
        }
        if (first)
        {
            logger.LogInformation("A message from {From} to {User} waits as a request", c.From.Bare, user);
            await NotifyAsync(c.To.Bare, $"{c.From.Bare} wants to talk to you: \"{preview}\". Reply, or add them to your contacts, to read their messages; block them to refuse.");
        }
        return true;
    }

    /// A headline from the server to the account's available resources: clients show it without a conversation.
    private async ValueTask NotifyAsync(Jid user, string text)
    {
        foreach (var entry in directory.Get(user).Available())
            await router.DeliverAsync(entry, new Element("message", Ns.Client).SetAttr("from", user.Domain).SetAttr("to", entry.Jid.ToString())
                .SetAttr("type", "headline").Add(new Element("subject", Ns.Client).SetText("Message request"))
                .Add(new Element("body", Ns.Client).SetText(text)));
    }

    /// Inbound (the account's own stanzas): a reply, a roster item or a subscription accepts a stranger; a block drops them.
    private async ValueTask<bool> WatchOwnerAsync(StanzaContext c)
    {
        var user = c.From.Local;
        if (user is null || !domains.Contains(c.From.Domain) || !await EnabledAsync(user)) return false;
        switch (c.Name)
        {
            case "message" when c.To is { Local: not null } to && c.Type is not ("error" or "groupchat"):
                await AcceptAsync(user, to);
                break;
            case "presence" when c.Type is "subscribe" or "subscribed" && c.To is { Local: not null } to:
                await AcceptAsync(user, to);
                break;
            case "iq" when c.Type == "set" && c.Stanza.Child("query", Ns.Roster) is { } query:
                foreach (var item in query.Elements("item", Ns.Roster))
                    if (item.Attr("subscription") != "remove" && Jid.TryParse(item.Attr("jid"), out var added)) await AcceptAsync(user, added);
                break;
            case "iq" when c.Type == "set" && c.Stanza.Child("block", Ns.Blocking) is { } block:
                foreach (var item in block.Elements("item", Ns.Blocking))
                    if (Jid.TryParse(item.Attr("jid"), out var blocked)) await DropAsync(user, blocked);
                break;
        }
        return false;
    }

    private async ValueTask AcceptAsync(string user, Jid stranger)
    {
        var from = stranger.Bare.ToString();
        List<Element> messages = [];
        var gate = Gate(user);
        await gate.WaitAsync();
        try
        {
            // The account's every message passes here: one already accepted and not waiting costs no storage write.
            var known = await LoadAsync(user);
            if (known.Accepted.Contains(from) && !known.Waiting.Any(w => w.From == from)) return;
            bool waiting = false;
            await ChangeAsync(user, state =>
            {
                waiting = state.Waiting.RemoveAll(w => w.From == from) > 0;
                if (state.Accepted.Contains(from)) return waiting;
                state.Accepted.Add(from);
                if (state.Accepted.Count > MaxAccepted) state.Accepted.RemoveAt(0);
                return true;
            });
            if (waiting)
            {
                var page = await _held.QueryAsync(new ArchiveQuery(Owner(user, stranger), Max: Options.MaxMessagesPerSender + 10));
                messages = page.Records.Select(r => StoredStanza.Parse(r.Payload)).ToList();
                await _held.DeleteAllAsync(Owner(user, stranger));
            }
        }
        finally
        {
            gate.Release();
        }
        if (messages.Count > 0) logger.LogInformation("{User} accepted {From}: {Count} waiting message(s) delivered", user, from, messages.Count);
        // Routed as if they arrived now: the account accepted the sender, so they reach its resources or its spool.
        foreach (var m in messages) await router.RouteAsync(m, null);
    }

    private async ValueTask DropAsync(string user, Jid stranger)
    {
        var from = stranger.Bare.ToString();
        var gate = Gate(user);
        await gate.WaitAsync();
        try
        {
            bool dropped = false;
            await ChangeAsync(user, state => dropped = state.Waiting.RemoveAll(w => w.From == from) > 0);
            if (!dropped) return;
            await _held.DeleteAllAsync(Owner(user, stranger));
        }
        finally
        {
            gate.Release();
        }
        logger.LogInformation("{User} blocked {From}: the waiting request was deleted", user, from);
    }

    /// At initial presence: one reminder of the requests still waiting.
    private async ValueTask RemindAsync(ISession session)
    {
        var user = session.Jid.Local!;
        if (!await EnabledAsync(user)) return;
        var waiting = await WaitingAsync(user);
        if (waiting.Count == 0) return;
        var names = string.Join(", ", waiting.Take(5).Select(w => w.From)) + (waiting.Count > 5 ? $" and {waiting.Count - 5} more" : "");
        session.Send(new Element("message", Ns.Client).SetAttr("from", session.Jid.Domain).SetAttr("to", session.Jid.ToString())
            .SetAttr("type", "headline").Add(new Element("subject", Ns.Client).SetText("Message requests"))
            .Add(new Element("body", Ns.Client).SetText(
                string.Create(CultureInfo.InvariantCulture, $"{waiting.Count} message request(s) wait: {names}. Reply or add them to read, block them to refuse."))));
    }

    private async ValueTask DeleteAllAsync(string user)
    {
        var state = await LoadAsync(user);
        foreach (var w in state.Waiting) await _held.DeleteAllAsync(Owner(user, Jid.Parse(w.From)));
        await storage.KeyValue.DeleteAsync(user, StateKey);
        await storage.KeyValue.DeleteAsync(ChoicesOwner, user);
        _enabled.TryRemove(user, out _);
        _states.TryRemove(user, out _);
        await invalidation.ChangedAsync(CacheName, user);
    }
}
