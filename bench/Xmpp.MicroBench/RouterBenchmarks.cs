using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Storage;
using Xmpp.Storage.Memory;

namespace Xmpp.MicroBench;

/// The router's message path with the real modules and the in-memory store: a chat message to a bare JID with one
/// available resource (RFC 6121 §8.5.2) and to a full JID. The receiving
/// sessions are sinks that drop what they get, so only routing is measured. Stanzas are routed as server-generated
/// (origin null), so the Inbound stage that needs a live stream is not part of it.
[MemoryDiagnoser]
public class RouterBenchmarks
{
    private ServiceProvider _services = null!;
    private IRouter _router = null!;
    private Element _toBare = null!, _toFull = null!;

    private sealed class NullSink(Jid jid) : ISessionSink
    {
        public Jid Jid { get; } = jid;
        public bool Send(Element stanza) => true;
        public void Close(string streamErrorCondition, string? text = null) { }
    }

    [GlobalSetup]
    public void Setup()
    {
        var options = new XmppServerOptions { Domains = ["bench.localhost"], DataDir = Path.GetTempPath() };
        var services = new ServiceCollection();
        services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        XmppHost.AddServices(services, options);
        services.AddSingleton<IStorage>(new MemoryStorage());
        _services = services.BuildServiceProvider();
        var accounts = _services.GetRequiredService<AccountService>();
        foreach (var u in new[] { "alice", "bob" })
            accounts.CreateAsync(u, "bench-password").AsTask().GetAwaiter().GetResult();
        var directory = _services.GetRequiredService<ISessionDirectory>();
        foreach (var u in new[] { "alice", "bob" })
        {
            var jid = Jid.Parse($"{u}@bench.localhost/pc");
            directory.Bind(new SessionEntry(jid, new NullSink(jid), Available: true));
        }
        _services.GetRequiredService<ModuleRegistry>(); // loads the modules into the router's table
        _router = _services.GetRequiredService<IRouter>();
        _toBare = Message("bob@bench.localhost");
        _toFull = Message("bob@bench.localhost/pc");
    }

    private static Element Message(string to) =>
        new Element("message", Ns.Client).SetAttr("from", "alice@bench.localhost/pc").SetAttr("to", to).SetAttr("type", "chat")
            .SetAttr("id", "m1").Add(new Element("body", Ns.Client).SetText("hello"));

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Baseline = true)]
    public ValueTask MessageToBareJid() => _router.RouteAsync(_toBare, null);

    [Benchmark]
    public ValueTask MessageToFullJid() => _router.RouteAsync(_toFull, null);
}
