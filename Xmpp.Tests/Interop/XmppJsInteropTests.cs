using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

/// xmpp.js (@xmpp/client, the browser-side library, run by node) over our WebSocket endpoint with a TCP client on the
/// other end. ./test.sh installs it with `npm ci` in Interop/xmppjs.
[TestFixture]
public sealed class XmppJsInteropTests
{
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

    [Test]
    public async Task Xmppjs_logs_in_over_websocket_and_exchanges_a_message_with_a_tcp_client()
    {
        var dir = ClientDirectory();
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "@xmpp", "client")))
            Assert.Fail($"xmpp.js is not installed: run `npm ci` in {dir} (./test.sh does it)");
        var node = ClientProcess.RequireProgram("node", "nodejs");
        await using var server = await TestServer.StartAsync(configure: TestServer.WithHttp);
        await server.AddUserAsync("romeo", "pw-romeo");
        await server.AddUserAsync("juliet", "pw-juliet");
        await using var juliet = await TestClient.ConnectAsync(server, "juliet", "pw-juliet", "phone", sendPresence: true);

        using var js = ClientProcess.Start("/usr/bin/env",
            ["NODE_TLS_REJECT_UNAUTHORIZED=0", "XMPPJS_TRACE=1", node, Path.Combine(dir, "xmppjs_client.mjs"),
             $"wss://127.0.0.1:{server.HttpPort}/xmpp-websocket", server.Domain, "romeo", "pw-romeo",
             "juliet@localhost/phone", "hello from the browser", "hello from tcp"],
            TimeSpan.FromSeconds(60));
        var online = await js.WaitForEventAsync("online", within: TimeSpan.FromSeconds(40));
        Assert.That(ClientProcess.Text(online, "jid"), Is.EqualTo("romeo@localhost/xmppjs"), js.Describe());
        Assert.That(js.EventsNamed("out").Any(e => ClientProcess.Text(e, "data")!.Contains("mechanism=\"SCRAM-SHA-1\"")), js.Describe());

        var got = await juliet.ReceiveAsync(e => e.Name == "message", TimeSpan.FromSeconds(30));
        Assert.That(got.ChildText("body", Ns.Client), Is.EqualTo("hello from the browser"));
        Assert.That(got.Attr("from"), Is.EqualTo("romeo@localhost/xmppjs"));
        await juliet.SendAsync($"<message to='{got.Attr("from")}' type='chat'><body>hello from tcp</body></message>");

        var received = await js.WaitForEventAsync("received", within: TimeSpan.FromSeconds(30));
        Assert.That(ClientProcess.Text(received, "from"), Is.EqualTo("juliet@localhost/phone"));
        await js.WaitForExitAsync();
        Assert.That(js.ExitCode, Is.EqualTo(0), js.Describe());
        Assert.That(js.EventsNamed("closed"), Has.Count.EqualTo(1), "xmpp.js closed its stream with <close/> and got ours");
    }
}
