using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Reflection;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules;

/// Collects every module's registrations at start-up and freezes them into lookup tables,
/// so dispatch takes no locks and builds no strings.
public sealed class ModuleRegistry : IModuleBuilder
{
    private readonly Dictionary<(IqTarget, string Ns, string Name), IqHandler> _iq = new();
    private readonly SortedSet<string> _serverFeatures = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _accountFeatures = new(StringComparer.Ordinal);
    private readonly List<(string Category, string Type, string Name)> _identities = [];
    private readonly List<(string Category, string Type, string Name)> _accountIdentities = [];
    private readonly List<Func<Jid, Jid, ValueTask<IEnumerable<Element>>>> _accountItems = [];
    private readonly List<Func<Jid, string, string, DiscoNode?>> _serverNodes = [];
    private readonly List<Func<Element?>> _serverInfoForms = [];
    private readonly List<(StreamFeatureStage Stage, Func<StreamFeatureContext, Element?> Feature)> _streamFeatures = [];
    private readonly List<(HookPoint Point, int Order, int Seq, StanzaHook Hook)> _hooks = [];
    private readonly List<Func<ISession, ValueTask>> _bound = [], _available = [], _closed = [];
    private readonly List<Func<ISession, IReadOnlyList<Element>, ValueTask>> _detached = [];
    private readonly List<Func<string, ValueTask>> _accountDeleted = [];
    private readonly Dictionary<(string Ns, string Name), Func<ClientSession, Element, ValueTask>> _streamElements = new();
    private FrozenDictionary<(string, string), Func<ClientSession, Element, ValueTask>> _streamElementTable =
        FrozenDictionary<(string, string), Func<ClientSession, Element, ValueTask>>.Empty;
    private readonly SortedDictionary<string, Func<ClientSession, Element, ValueTask<Element?>>> _bind2Inline = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HostedService> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Domain, string Ns, string Name), IqHandler> _serviceIq = new();
    private FrozenDictionary<string, HostedService> _serviceTable = FrozenDictionary<string, HostedService>.Empty;
    private FrozenDictionary<(string, string, string), IqHandler> _serviceIqTable = FrozenDictionary<(string, string, string), IqHandler>.Empty;
    private readonly List<IXmppModule> _modules = [];
    private bool _frozen;

    private FrozenDictionary<(IqTarget, string, string), IqHandler> _iqTable = FrozenDictionary<(IqTarget, string, string), IqHandler>.Empty;
    private StanzaHook[][] _hookTable = [];

    public ModuleRegistry(IEnumerable<IXmppModule> modules)
    {
        foreach (var module in modules)
        {
            _modules.Add(module);
            module.Register(this);
        }
        Freeze();
    }

    public IReadOnlyList<IXmppModule> Modules => _modules;
    public IReadOnlyCollection<string> ServerFeatures => _serverFeatures;
    public IReadOnlyCollection<string> AccountFeatures => _accountFeatures;
    public IReadOnlyList<(string Category, string Type, string Name)> Identities => _identities;
    public IReadOnlyList<(string Category, string Type, string Name)> AccountIdentities => _accountIdentities;
    public IReadOnlyList<Func<Jid, Jid, ValueTask<IEnumerable<Element>>>> AccountItemSources => _accountItems;
    public IReadOnlyList<Func<Element?>> ServerInfoForms => _serverInfoForms;
    public IReadOnlyList<Func<ISession, ValueTask>> SessionBound => _bound;
    public IReadOnlyList<Func<ISession, ValueTask>> SessionAvailable => _available;
    public IReadOnlyList<Func<ISession, ValueTask>> SessionClosed => _closed;
    public IReadOnlyList<Func<ISession, IReadOnlyList<Element>, ValueTask>> SessionDetached => _detached;
    public IReadOnlyList<Func<string, ValueTask>> AccountDeleted => _accountDeleted;

    /// Runs every session-closed handler once per session, whichever path ends it first (connection cleanup, stream
    /// management expiry, replacement by a new login); a failing handler is logged and the others still run.
    private readonly ConcurrentDictionary<ClientSession, TaskCompletionSource> _ending = new();

    /// Marks a session as ending, before it leaves the directory: a reader that no longer finds it there (the admins'
    /// "last login") can then wait for its session-closed handlers, which record the logout, instead of seeing the
    /// account neither online nor logged out. Dispose once the handlers have run.
    public IDisposable BeginEnding(ClientSession session)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ending[session] = done;
        return new EndingMark(this, session, done);
    }

    /// Completes once the session-closed handlers of every session of the account that is ending now have run.
    public Task EndingAsync(Jid bare)
    {
        List<Task>? waits = null;
        foreach (var (session, done) in _ending)
            if (session.Jid.Bare == bare) (waits ??= []).Add(done.Task);
        return waits is null ? Task.CompletedTask : Task.WhenAll(waits);
    }

    private sealed class EndingMark(ModuleRegistry owner, ClientSession session, TaskCompletionSource done) : IDisposable
    {
        public void Dispose()
        {
            owner._ending.TryRemove(new KeyValuePair<ClientSession, TaskCompletionSource>(session, done));
            done.TrySetResult();
        }
    }

    public async ValueTask EndSessionAsync(ClientSession session, ILogger logger)
    {
        if (!session.TryBeginEnd()) return;
        foreach (var handler in _closed)
        {
            try { await handler(session); }
            catch (Exception ex) { logger.LogError(ex, "Session-closed handler failed for {Jid}", session.Jid); }
        }
    }

    /// The specifications the loaded modules declare, for the README table and `check`.
    public IEnumerable<(string Module, XepAttribute Xep)> Specs() =>
        _modules.SelectMany(m => m.GetType().GetCustomAttributes<XepAttribute>().Select(x => (m.GetType().Name, x)));

    public IqHandler? FindIq(IqTarget target, string ns, string name) =>
        _iqTable.TryGetValue((target, ns, name), out var h) ? h : null;

    public Func<ClientSession, Element, ValueTask>? FindStreamElement(string ns, string name) =>
        _streamElementTable.TryGetValue((ns, name), out var h) ? h : null;

    /// The XEP-0386 inline features, in a stable order, as advertised.
    public IReadOnlyCollection<string> Bind2InlineFeatures => _bind2Inline.Keys;

    public Func<ClientSession, Element, ValueTask<Element?>>? FindBind2Inline(string ns) =>
        _bind2Inline.TryGetValue(ns, out var h) ? h : null;

    public bool HasIqNamespace(string ns) => _iqTable.Keys.Any(k => k.Item2 == ns) || _serviceIqTable.Keys.Any(k => k.Item2 == ns);

    /// The service hosted on exactly this domain, or null when the domain is not a service.
    public HostedService? FindService(string domain) => _serviceTable.TryGetValue(domain, out var s) ? s : null;

    public IqHandler? FindServiceIq(string domain, string ns, string name) =>
        _serviceIqTable.TryGetValue((domain, ns, name), out var h) ? h : null;

    /// The services hosted under a served domain, for its disco#items (XEP-0030 §4).
    public IEnumerable<(string Domain, string Name)> ServicesOf(string parentDomain) =>
        _serviceTable.Where(s => s.Value.Parent == parentDomain).OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => (s.Key, s.Value.Name));

    public StanzaHook[] Hooks(HookPoint point) => _hookTable[(int)point];

    public IEnumerable<Element> StreamFeatures(StreamFeatureStage stage, StreamFeatureContext context)
    {
        foreach (var (s, f) in _streamFeatures)
            if (s == stage && f(context) is { } e) yield return e;
    }

    public void Iq(IqTarget target, string name, string ns, IqHandler handler)
    {
        EnsureOpen();
        if (!_iq.TryAdd((target, ns, name), handler))
            throw new InvalidOperationException($"Two modules handle IQ {{{ns}}}{name} for {target}.");
    }

    public void ServerFeature(string feature) { EnsureOpen(); _serverFeatures.Add(feature); }
    public void AccountFeature(string feature) { EnsureOpen(); _accountFeatures.Add(feature); }
    public void ServerIdentity(string category, string type, string name) { EnsureOpen(); _identities.Add((category, type, name)); }
    public void AccountIdentity(string category, string type, string name) { EnsureOpen(); _accountIdentities.Add((category, type, name)); }
    public void AccountItems(Func<Jid, Jid, ValueTask<IEnumerable<Element>>> items) { EnsureOpen(); _accountItems.Add(items); }

    public void ServerNode(Func<Jid, string, string, DiscoNode?> node) { EnsureOpen(); _serverNodes.Add(node); }
    public void ServerInfoForm(Func<Element?> form) { EnsureOpen(); _serverInfoForms.Add(form); }

    /// The first module's answer for a node of a served domain, or null when no module knows it for this asker.
    public DiscoNode? FindServerNode(Jid asker, string domain, string node)
    {
        foreach (var resolve in _serverNodes)
            if (resolve(asker, domain, node) is { } found) return found;
        return null;
    }

    public void StreamFeature(StreamFeatureStage stage, Func<StreamFeatureContext, Element?> feature)
    { EnsureOpen(); _streamFeatures.Add((stage, feature)); }

    public void Hook(HookPoint point, int order, StanzaHook hook)
    { EnsureOpen(); _hooks.Add((point, order, _hooks.Count, hook)); }

    public void StreamElement(string name, string ns, Func<ClientSession, Element, ValueTask> handler)
    {
        EnsureOpen();
        if (!_streamElements.TryAdd((ns, name), handler))
            throw new InvalidOperationException($"Two modules handle the stream element {{{ns}}}{name}.");
    }

    public void Bind2Inline(string ns, Func<ClientSession, Element, ValueTask<Element?>> handler)
    {
        EnsureOpen();
        if (!_bind2Inline.TryAdd(ns, handler))
            throw new InvalidOperationException($"Two modules handle the Bind 2 inline feature {ns}.");
    }

    public void OnSessionBound(Func<ISession, ValueTask> handler) { EnsureOpen(); _bound.Add(handler); }
    public void OnSessionAvailable(Func<ISession, ValueTask> handler) { EnsureOpen(); _available.Add(handler); }
    public void OnSessionClosed(Func<ISession, ValueTask> handler) { EnsureOpen(); _closed.Add(handler); }
    public void OnSessionDetached(Func<ISession, IReadOnlyList<Element>, ValueTask> handler) { EnsureOpen(); _detached.Add(handler); }
    public void OnAccountDeleted(Func<string, ValueTask> handler) { EnsureOpen(); _accountDeleted.Add(handler); }

    public void Service(string domain, string parentDomain, string name, Func<StanzaContext, ValueTask>? entities = null, bool wholeDomain = false)
    {
        EnsureOpen();
        if (wholeDomain && entities is null) throw new InvalidOperationException($"The service {domain} takes the whole domain but has no handler.");
        if (!_services.TryAdd(domain, new HostedService(parentDomain, name, entities, wholeDomain)))
            throw new InvalidOperationException($"Two modules host the service {domain}.");
    }

    public void ServiceIq(string domain, string name, string ns, IqHandler handler)
    {
        EnsureOpen();
        if (!_services.ContainsKey(domain))
            throw new InvalidOperationException($"Declare the service {domain} before its IQ handlers.");
        if (!_serviceIq.TryAdd((domain, ns, name), handler))
            throw new InvalidOperationException($"Two modules handle IQ {{{ns}}}{name} for {domain}.");
    }

    private void Freeze()
    {
        _serviceTable = _services.ToFrozenDictionary(StringComparer.Ordinal);
        _serviceIqTable = _serviceIq.ToFrozenDictionary();
        _iqTable = _iq.ToFrozenDictionary();
        _streamElementTable = _streamElements.ToFrozenDictionary();
        var points = Enum.GetValues<HookPoint>();
        _hookTable = new StanzaHook[points.Length][];
        foreach (var p in points)
            _hookTable[(int)p] = _hooks.Where(h => h.Point == p).OrderBy(h => h.Order).ThenBy(h => h.Seq).Select(h => h.Hook).ToArray();
        _frozen = true;
    }

    private void EnsureOpen()
    {
        if (_frozen) throw new InvalidOperationException("Modules register only at start-up.");
    }
}

/// A service declared with IModuleBuilder.Service: where it is listed, and who takes stanzas for JIDs at it.
/// WholeDomain: entities also takes what is addressed to the domain itself (a component link), not only JIDs at it.
public sealed record HostedService(string Parent, string Name, Func<StanzaContext, ValueTask>? Entities, bool WholeDomain = false);

/// What disco#info and disco#items say about one node (XEP-0030 §3.2, §4.2).
public sealed record DiscoNode(
    IReadOnlyList<(string Category, string Type, string Name)> Identities,
    IReadOnlyList<string> Features,
    IReadOnlyList<Element> Items);
