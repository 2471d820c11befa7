using System.Text.Json;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

// Drives slixmpp (python3-slixmpp) through Interop/clients/slix_client.py against the real server.
[TestFixture]
[Category("Interop")]
public sealed class SlixmppInteropTests : InteropFixture
{
    protected override void RequireClients()
    {
        ClientProcess.RequirePythonModule("slixmpp", "python3-slixmpp");
    }

    [TestCase(false, "starttls")]
    [TestCase(true, "direct")]
    public async Task Slixmpp_logs_in_with_scram_binds_a_resource_and_disconnects_cleanly(bool directTls, string tls)
    {
        using var run = await ClientProcess.RunScriptAsync(Slix, "login", Romeo, "r0meo-pass", _server, directTls);

        AssertCleanScramLogin(run, Romeo, tls);
    }

    // Issue 20: slixmpp 1.8.3 binds with tls-unique whenever it sees -PLUS (it ignores XEP-0440), and under TLS 1.3
    // there is no tls-unique, so every -PLUS attempt failed and fired failed_auth before it fell back. The script
    // fails on the first failed_auth; RFC 6120 SASL now lists no -PLUS, so slixmpp takes SCRAM-SHA-512 with the
    // 'y' flag (it could bind, sees no -PLUS), which the server accepts because this list had none.
    [TestCase(false, "starttls")]
    [TestCase(true, "direct")]
    public async Task Slixmpp_with_default_settings_logs_in_on_the_first_try_without_a_failed_auth(bool directTls, string tls)
    {
        using var run = await ClientProcess.RunScriptAsync(Slix, "login", Romeo, "r0meo-pass", _server, directTls);

        AssertCleanScramLogin(run, Romeo, tls);
        var online = run.EventsNamed("online").Single();
        Assert.Multiple(() =>
        {
            Assert.That(ClientProcess.Text(online, "mechanism"), Is.EqualTo("SCRAM-SHA-512"), run.Describe());
            Assert.That(ClientProcess.Text(online, "tls_version"), Is.EqualTo("TLSv1.3"), "the case where tls-unique does not exist");
        });
    }

    [Test]
    public async Task Slixmpp_with_a_wrong_password_reports_failed_auth_and_exits_non_zero()
    {
        // The other side of the check above: the failed_auth handler really fires and fails the script.
        using var run = await ClientProcess.RunScriptAsync(Slix, "login", Romeo, "not-the-password", _server);

        Assert.That(run.ExitCode, Is.Not.EqualTo(0), run.Describe());
        Assert.That(run.EventsNamed("online"), Is.Empty);
        Assert.That(run.EventsNamed("error").Select(e => ClientProcess.Text(e, "message")),
            Has.Some.Contains("SASL failure before login: not-authorized"), run.Describe());
    }

    [Test]
    public async Task Slixmpp_message_reaches_nbxmpp_with_exact_body_and_sender()
    {
        ClientProcess.RequirePythonModule("nbxmpp", "python3-nbxmpp");
        const string body = "Wherefore art thou? <&> ☀ é";
        var id = "slix-" + Guid.NewGuid().ToString("N");
        using var juliet = ClientProcess.StartScript(Nbxmpp, "receive", Juliet, "jul1et-pass", _server, extra: ["--count", "1"]);
        await juliet.WaitForEventAsync("online");

        using var romeo = await ClientProcess.RunScriptAsync(Slix, "send", Romeo, "r0meo-pass", _server,
            extra: ["--to", Juliet, "--body", body, "--id", id]);
        await juliet.WaitForExitAsync();

        Assert.That(romeo.ExitCode, Is.EqualTo(0), romeo.Describe());
        Assert.That(juliet.ExitCode, Is.EqualTo(0), juliet.Describe());
        var message = juliet.EventsNamed("message").Single();
        Assert.Multiple(() =>
        {
            Assert.That(ClientProcess.Text(message, "body"), Is.EqualTo(body));
            Assert.That(Bare(ClientProcess.Text(message, "from")), Is.EqualTo(Romeo));
            Assert.That(ClientProcess.Text(message, "id"), Is.EqualTo(id));
            Assert.That(ClientProcess.Text(message, "type"), Is.EqualTo("chat"));
        });
    }

    // Romeo (slixmpp) writes three messages to Juliet while she is offline, asking for receipts and
    // markers; Juliet (nbxmpp) comes online, gets them in order with XEP-0203 stamps and answers each
    // with a XEP-0184 receipt and a XEP-0333 displayed marker; Romeo, back online, sees each tick once.
    [Test]
    public async Task Offline_messages_are_delivered_in_order_and_their_receipts_and_markers_return_once_each()
    {
        ClientProcess.RequirePythonModule("nbxmpp", "python3-nbxmpp");
        string[] bodies = ["first, while you sleep", "second", "third & last"];
        var ids = bodies.Select((_, i) => $"m{i + 1}-{Guid.NewGuid():N}").ToArray();
        var sendArgs = new List<string> { "--to", Juliet, "--receipt", "--markable" };
        for (int i = 0; i < bodies.Length; i++) sendArgs.AddRange(["--body", bodies[i], "--id", ids[i]]);

        using var romeoSends = await ClientProcess.RunScriptAsync(Slix, "send", Romeo, "r0meo-pass", _server, extra: sendArgs);
        Assert.That(romeoSends.ExitCode, Is.EqualTo(0), romeoSends.Describe());
        Assert.That(romeoSends.EventsNamed("sent").Select(e => ClientProcess.Text(e, "id")), Is.EqualTo(ids));

        using var julietAcks = await ClientProcess.RunScriptAsync(Nbxmpp, "ack", Juliet, "jul1et-pass", _server,
            directTls: true, extra: ["--count", "3"]);
        Assert.That(julietAcks.ExitCode, Is.EqualTo(0), julietAcks.Describe());
        var delivered = julietAcks.EventsNamed("message");
        Assert.Multiple(() =>
        {
            Assert.That(delivered.Select(m => ClientProcess.Text(m, "body")), Is.EqualTo(bodies), julietAcks.Describe());
            Assert.That(delivered.Select(m => ClientProcess.Text(m, "id")), Is.EqualTo(ids));
            Assert.That(delivered.Select(m => Bare(ClientProcess.Text(m, "from"))), Has.All.EqualTo(Romeo));
            Assert.That(delivered.Select(m => ClientProcess.Text(m, "delay")), Has.All.Not.Null, "offline messages need a XEP-0203 delay");
            // nbxmpp only takes the stamp as the server's (offline) time when delay/@from is our domain.
            Assert.That(delivered.Select(m => ClientProcess.Flag(m, "server_delay")), Has.All.True, "delay/@from should be the server's domain");
            Assert.That(delivered.Select(m => ClientProcess.Flag(m, "receipt_request")), Has.All.True);
            Assert.That(delivered.Select(m => ClientProcess.Flag(m, "markable")), Has.All.True);
            Assert.That(julietAcks.EventsNamed("acked"), Has.Count.EqualTo(3));
        });

        using var romeoReads = await ClientProcess.RunScriptAsync(Slix, "receive", Romeo, "r0meo-pass", _server,
            extra: ["--count", "6"]);
        Assert.That(romeoReads.ExitCode, Is.EqualTo(0), romeoReads.Describe());
        var ticks = romeoReads.EventsNamed("message");
        Assert.Multiple(() =>
        {
            Assert.That(Ids(ticks, "received"), Is.EquivalentTo(ids), "XEP-0184 receipts\n" + romeoReads.Describe());
            Assert.That(Ids(ticks, "displayed"), Is.EquivalentTo(ids), "XEP-0333 displayed markers\n" + romeoReads.Describe());
            Assert.That(ticks.Select(m => Bare(ClientProcess.Text(m, "from"))), Has.All.EqualTo(Juliet));
            Assert.That(ticks.Select(m => ClientProcess.Text(m, "body")), Has.All.Null);
        });

        // Nothing is left in the spool: a second visit gets no further message and times out.
        using var romeoAgain = await ClientProcess.RunScriptAsync(Slix, "receive", Romeo, "r0meo-pass", _server,
            extra: ["--count", "1"], scriptTimeout: TimeSpan.FromSeconds(2));
        Assert.That(romeoAgain.ExitCode, Is.EqualTo(2), "expected no redelivery\n" + romeoAgain.Describe());
        Assert.That(romeoAgain.EventsNamed("message"), Is.Empty, romeoAgain.Describe());
    }

    // Juliet (slixmpp with its XEP-0198 plugin) enables stream management with resumption and reads five messages;
    // then her socket is cut without closing the stream. Romeo keeps writing while she is gone; she reconnects,
    // resumes, and gets every message exactly once, in order, with nothing left over for the offline spool.
    [Test]
    public async Task Slixmpp_resumes_after_losing_its_socket_and_gets_every_message_exactly_once_in_order()
    {
        var ids = Enumerable.Range(1, 15).Select(i => $"sm{i}-{Guid.NewGuid():N}").ToArray();
        using var juliet = ClientProcess.StartScript(Slix, "resume", Juliet, "jul1et-pass", _server,
            extra: ["--count", "15", "--drop-after", "5", "--gap", "2"], scriptTimeout: TimeSpan.FromSeconds(30));
        var enabled = await juliet.WaitForEventAsync("sm_enabled");
        Assert.That(ClientProcess.Text(enabled, "id"), Is.Not.Null.And.Not.Empty, juliet.Describe());
        await using var romeo = await TestClient.ConnectAsync(_server, "romeo", "r0meo-pass", "balcony");

        async Task Send(int first, int last)
        {
            for (int i = first; i <= last; i++)
                await romeo.SendAsync($"<message to='{Juliet}' type='chat' id='{ids[i - 1]}'><body>line {i}</body></message>");
        }
        await Send(1, 5);
        await juliet.WaitForEventAsync("dropped", within: TimeSpan.FromSeconds(20));
        await Send(6, 10); // while Juliet has no connection
        await juliet.WaitForEventAsync("resumed", within: TimeSpan.FromSeconds(20));
        await Send(11, 15);
        await juliet.WaitForExitAsync();

        Assert.That(juliet.ExitCode, Is.EqualTo(0), juliet.Describe());
        var received = juliet.EventsNamed("message");
        Assert.Multiple(() =>
        {
            Assert.That(received.Select(m => ClientProcess.Text(m, "id")), Is.EqualTo(ids), juliet.Describe());
            Assert.That(received.Select(m => Bare(ClientProcess.Text(m, "from"))), Has.All.EqualTo(Romeo));
            Assert.That(juliet.EventsNamed("offline"), Has.Count.EqualTo(1), "clean close after resuming\n" + juliet.Describe());
        });
        Assert.That(await _server.Get<Xmpp.Storage.IStorage>().Archive("offline").CountAsync("juliet"), Is.Zero,
            "acknowledged before closing: nothing was treated as undelivered");
    }

    // Romeo (slixmpp) sends 23 messages to Juliet; Juliet (slixmpp's XEP-0313 plugin with its XEP-0059 iterator) pages
    // through her archive 10 at a time, oldest first and then newest first, and sees every message once, in order.
    [Test]
    public async Task Slixmpp_pages_through_the_archive_forward_and_backward_with_every_message_once_in_order()
    {
        var bodies = Enumerable.Range(1, 23).Select(i => $"message {i} <&>").ToArray();
        var sendArgs = new List<string> { "--to", Juliet };
        foreach (var body in bodies) sendArgs.AddRange(["--body", body]);
        using var romeo = await ClientProcess.RunScriptAsync(Slix, "send", Romeo, "r0meo-pass", _server, extra: sendArgs);
        Assert.That(romeo.ExitCode, Is.EqualTo(0), romeo.Describe());

        using var forward = await ClientProcess.RunScriptAsync(Slix, "mam", Juliet, "jul1et-pass", _server, extra: ["--page-size", "10"]);
        using var backward = await ClientProcess.RunScriptAsync(Slix, "mam", Juliet, "jul1et-pass", _server,
            extra: ["--page-size", "10", "--reverse"]);

        Assert.That(forward.ExitCode, Is.EqualTo(0), forward.Describe());
        Assert.That(backward.ExitCode, Is.EqualTo(0), backward.Describe());
        var archived = forward.EventsNamed("archived");
        var pages = forward.EventsNamed("page");
        Assert.Multiple(() =>
        {
            Assert.That(archived.Select(m => ClientProcess.Text(m, "body")), Is.EqualTo(bodies), forward.Describe());
            Assert.That(archived.Select(m => Bare(ClientProcess.Text(m, "from"))), Has.All.EqualTo(Romeo));
            Assert.That(archived.Select(m => ClientProcess.Text(m, "archive_id")), Is.Unique);
            Assert.That(archived.Select(m => ClientProcess.Text(m, "stamp")), Has.All.Not.Empty);
            Assert.That(pages.Take(3).Select(p => p.GetProperty("size").GetInt32()), Is.EqualTo(new[] { 10, 10, 3 }), forward.Describe());
            Assert.That(pages.Take(3).Select(p => ClientProcess.Text(p, "count")), Has.All.EqualTo("23"));
            Assert.That(pages.Take(3).Select(p => ClientProcess.Text(p, "complete")), Is.EqualTo(new[] { "false", "false", "true" }));
            // Backwards: the newest page first, each page still in chronological order (XEP-0313 §4.3.3).
            Assert.That(backward.EventsNamed("archived").Select(m => ClientProcess.Text(m, "body")),
                Is.EqualTo(bodies[13..].Concat(bodies[3..13]).Concat(bodies[..3])), backward.Describe());
            Assert.That(backward.EventsNamed("page").Take(3).Select(p => ClientProcess.Text(p, "complete")), Is.EqualTo(new[] { "false", "false", "true" }));
        });
    }

    private static IEnumerable<string?> Ids(IEnumerable<JsonElement> messages, string property) =>
        messages.Select(m => ClientProcess.Text(m, property)).Where(v => v is not null);

    private static string? Bare(string? jid) => jid?.Split('/')[0];
}
