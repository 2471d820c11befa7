using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

/// Runs Interop/xmppjs/xmppjs_client.mjs (xmpp.js from npm, installed by ./test.sh with `npm ci`) with its XML traced,
/// and reads what it sent and received back as elements so tests match structurally.
internal static partial class XmppJs
{
    public static string WebSocketService(TestServer server) => $"wss://127.0.0.1:{server.HttpPort}/xmpp-websocket";

    /// Plain TCP: xmpp.js upgrades it with STARTTLS before it authenticates.
    public static string TcpService(TestServer server) => $"xmpp://127.0.0.1:{server.C2sPort}";

    /// The client logs in, sends body to peer and exits once expected comes back; with drop it cuts its connection
    /// once after sending, and reconnects.
    public static ClientProcess Start(string service, TestServer server, string username, string password, string peer,
        string body, string expected, string? userAgent = null, string? tokenFile = null, bool drop = false)
    {
        var dir = ClientDirectory();
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "@xmpp", "client")))
            Assert.Fail($"xmpp.js is not installed: run `npm ci` in {dir} (./test.sh does it)");
        var node = ClientProcess.RequireProgram("node", "nodejs");
        List<string> args = ["NODE_TLS_REJECT_UNAUTHORIZED=0", "XMPPJS_TRACE=1"];
        if (userAgent is not null) args.Add($"XMPPJS_USER_AGENT={userAgent}");
        if (tokenFile is not null) args.Add($"XMPPJS_TOKEN_FILE={tokenFile}");
        if (drop) args.Add("XMPPJS_DROP=1");
        args.Add(node);
        // xmpp.js 0.14 uses the global WebSocket, which node 20 has only behind this flag (22 has it by default).
        if (NodeNeedsWebSocketFlag(node)) args.Add("--experimental-websocket");
        args.AddRange([Path.Combine(dir, "xmppjs_client.mjs"), service, server.Domain, username, password, peer, body, expected]);
        return ClientProcess.Start("/usr/bin/env", args, TimeSpan.FromSeconds(60));
    }

    /// The exchange every run does: xmpp.js comes online, its message reaches peer, peer's answer reaches it, and it
    /// closes its stream and exits 0. Returns the full JID it was bound to.
    public static async Task<string> ChatAsync(ClientProcess js, TestClient peer, string body, string answer)
    {
        var online = await js.WaitForEventAsync("online", within: TimeSpan.FromSeconds(40));
        var jid = ClientProcess.Text(online, "jid")!;
        var got = await peer.ReceiveAsync(e => e.Name == "message", TimeSpan.FromSeconds(30));
        Assert.That(got.ChildText("body", Ns.Client), Is.EqualTo(body));
        Assert.That(got.Attr("from"), Is.EqualTo(jid));
        await peer.SendAsync($"<message to='{jid}' type='chat'><body>{answer}</body></message>");
        var received = await js.WaitForEventAsync("received", within: TimeSpan.FromSeconds(30));
        Assert.That(ClientProcess.Text(received, "from"), Is.EqualTo(peer.Jid!.ToString()));
        await js.WaitForExitAsync();
        Assert.That(js.ExitCode, Is.EqualTo(0), js.Describe());
        Assert.That(js.EventsNamed("closed"), Has.Count.EqualTo(1), "xmpp.js closed its stream and got our close");
        return jid;
    }

    /// Every element xmpp.js wrote, in order (the stream header, which is not a whole element, is left out).
    public static IReadOnlyList<XElement> Sent(ClientProcess js) =>
        Parse(string.Concat(js.EventsNamed("out").Select(e => ClientProcess.Text(e, "data"))), js);

    /// Every element xmpp.js read, in order: TCP chunks are joined and the stream header dropped.
    public static IReadOnlyList<XElement> Received(ClientProcess js) =>
        Parse(string.Concat(js.EventsNamed("in").Select(e => ClientProcess.Text(e, "data"))), js);

    /// The SASL2 &lt;authenticate/&gt; elements the client sent, in order.
    public static IReadOnlyList<XElement> Authentications(ClientProcess js) =>
        Sent(js).Where(e => e.Name == Sasl2 + "authenticate").ToArray();

    public static readonly XNamespace Sasl2 = "urn:xmpp:sasl:2";
    public static readonly XNamespace Bind2 = "urn:xmpp:bind:0";
    public static readonly XNamespace Fast = "urn:xmpp:fast:0";
    public static readonly XNamespace Sm = "urn:xmpp:sm:3";

    private static IReadOnlyList<XElement> Parse(string trace, ClientProcess js)
    {
        var body = StreamFraming().Replace(trace, "");
        var wrapped = new StringBuilder("<trace xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
            .Append(body).Append("</trace>").ToString();
        try { return XElement.Parse(wrapped).Elements().ToArray(); }
        catch (System.Xml.XmlException ex)
        {
            Assert.Fail($"the xmpp.js trace is not well-formed XML ({ex.Message})\n{js.Describe()}");
            return [];
        }
    }

    /// The XML declaration and the TCP stream's open and close tags, which are not elements of their own.
    [GeneratedRegex(@"<\?xml[^>]*\?>|<stream:stream[^>]*>|</stream:stream>")]
    private static partial Regex StreamFraming();

    private static bool? _needsWebSocketFlag;

    private static bool NodeNeedsWebSocketFlag(string node)
    {
        if (_needsWebSocketFlag is { } known) return known;
        var info = new System.Diagnostics.ProcessStartInfo(node, ["-p", "typeof WebSocket"]) { RedirectStandardOutput = true };
        using var probe = System.Diagnostics.Process.Start(info)!;
        var answer = probe.StandardOutput.ReadToEnd().Trim();
        probe.WaitForExit();
        return (_needsWebSocketFlag = answer == "undefined").Value;
    }

    private static string ClientDirectory()
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "Xmpp.Tests", "Interop", "xmppjs");
            if (File.Exists(Path.Combine(candidate, "package.json"))) return candidate;
        }
        Assert.Fail("Xmpp.Tests/Interop/xmppjs not found above the test directory");
        return "";
    }
}
