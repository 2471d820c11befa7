using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// The abuse limits of docs/security.md, each shown over real sockets: a flood meets its limit and gets the error the
/// limit promises, while what came before the limit went through. Each test starts its own server with small limits,
/// so no test's buckets are spent by another.
[TestFixture]
[Category("Abuse")]
public sealed class AbuseLimitTests
{
    private static async Task<TestServer> Server(Action<Dictionary<string, string?>> configure, params string[] users)
    {
        var server = await TestServer.StartAsync(configure: configure);
        foreach (var u in users) await server.AddUserAsync(u, u + "-pw");
        return server;
    }

    private static Task<TestClient> Login(TestServer server, string user, string resource = "pc") =>
        TestClient.ConnectAsync(server, user, user + "-pw", resource, sendPresence: true);

    private static string? Condition(Element stanza) =>
        stanza.Child("error", Ns.Client)?.Elements().FirstOrDefault(e => e.Namespace == Ns.StanzaErrors && e.Name != "text")?.Name;

    private static string? ErrorType(Element stanza) => stanza.Child("error", Ns.Client)?.Attr("type");

    private static void AssertWaitPolicyViolation(Element error)
    {
        Assert.That(error.Attr("type"), Is.EqualTo("error"), error.ToString());
        Assert.That(Condition(error), Is.EqualTo(StanzaErrors.PolicyViolation), error.ToString());
        // RFC 6120 §8.3.3.12: "wait", because the same request goes through once the sender slows down.
        Assert.That(ErrorType(error), Is.EqualTo("wait"), error.ToString());
    }

    [Test]
    public async Task Messages_beyond_the_account_burst_get_policy_violation_with_their_id_and_the_rest_arrive()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:RateLimits:MessagesPerSecond"] = "0.01";
            o["Xmpp:RateLimits:MessageBurst"] = "6";
        }, "alice", "bob");
        await using var bob = await Login(server, "bob");
        // Two resources of one account share its bucket.
        await using var phone = await Login(server, "alice", "phone");
        await using var laptop = await Login(server, "alice", "laptop");
        var received = new List<string>();
        async Task ReceiveBodies(int n)
        {
            for (int i = 0; i < n; i++)
                received.Add((await bob.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) is not null)).Attr("id")!);
        }
        // The phone's messages are through before the laptop sends: two connections are read in no fixed order.
        for (int i = 1; i <= 3; i++) await phone.SendAsync($"<message to='bob@localhost' type='chat' id='p{i}'><body>p{i}</body></message>");
        await ReceiveBodies(3);
        for (int i = 1; i <= 4; i++) await laptop.SendAsync($"<message to='bob@localhost' type='chat' id='l{i}'><body>l{i}</body></message>");

        var error = await laptop.ReceiveAsync(e => e.Name == "message" && e.Attr("type") == "error");
        Assert.That(error.Attr("id"), Is.EqualTo("l4"));
        AssertWaitPolicyViolation(error);
        await ReceiveBodies(3);
        Assert.That(received, Is.EqualTo(new[] { "p1", "p2", "p3", "l1", "l2", "l3" }));
        Assert.That(await bob.TryReceiveAsync(e => e.Attr("id") == "l4", TimeSpan.FromMilliseconds(300)), Is.Null);
    }

    [Test]
    public async Task Iq_requests_beyond_the_burst_get_policy_violation_and_the_bucket_refills()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:RateLimits:IqPerSecond"] = "5";
            o["Xmpp:RateLimits:IqBurst"] = "5";
        }, "alice");
        await using var alice = await Login(server, "alice");
        // Sent at once (not one after another's answer), so the refill cannot keep up.
        var sb = new StringBuilder();
        for (int i = 1; i <= 8; i++) sb.Append($"<iq type='get' id='ping{i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await alice.SendRawAsync(sb.ToString());
        var answers = new List<Element>();
        for (int i = 0; i < 8; i++) answers.Add(await alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("id")!.StartsWith("ping", StringComparison.Ordinal)));
        Assert.That(answers.Count(a => a.Attr("type") == "result"), Is.InRange(5, 6));
        var refused = answers.Where(a => a.Attr("type") == "error").ToList();
        Assert.That(refused, Is.Not.Empty);
        foreach (var e in refused) AssertWaitPolicyViolation(e);

        await Task.Delay(1200); // 5 per second: the bucket holds tokens again
        var again = await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(again.Attr("type"), Is.EqualTo("result"), again.ToString());
    }

    [Test]
    public async Task Presence_beyond_the_burst_gets_a_presence_error()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:RateLimits:PresencePerSecond"] = "0.01";
            o["Xmpp:RateLimits:PresenceBurst"] = "4";
        }, "alice");
        await using var alice = await Login(server, "alice"); // its initial presence is the first of the four
        for (int i = 1; i <= 4; i++) await alice.SendAsync($"<presence id='pr{i}'><status>{i}</status></presence>");
        var error = await alice.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "error");
        Assert.That(error.Attr("id"), Is.EqualTo("pr4"));
        AssertWaitPolicyViolation(error);
    }

    [Test]
    public async Task Accounts_behind_one_address_share_its_per_ip_bucket()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:RateLimits:MessagesPerSecond"] = "0.01";
            o["Xmpp:RateLimits:MessageBurst"] = "3";
            o["Xmpp:RateLimits:PerIpFactor"] = "1";
            o["Xmpp:RateLimits:ExemptLoopback"] = "false"; // the test's clients all come from 127.0.0.1
        }, "alice", "carol", "bob");
        await using var alice = await Login(server, "alice");
        await using var carol = await Login(server, "carol");
        for (int i = 1; i <= 3; i++) await alice.SendAsync($"<message to='bob@localhost' id='a{i}'><body>a{i}</body></message>");
        await Task.Delay(200);
        // Carol's own bucket is full, but 127.0.0.1 has spent the address's burst.
        await carol.SendAsync("<message to='bob@localhost' id='c1'><body>c1</body></message>");
        var error = await carol.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "c1");
        AssertWaitPolicyViolation(error);
    }

    [Test]
    public async Task The_default_limits_let_a_busy_login_through()
    {
        // Defaults: a client that logs in, asks 300 questions and sends 150 messages at once meets no limit.
        await using var server = await Server(_ => { }, "alice", "bob");
        await using var bob = await Login(server, "bob");
        await using var alice = await Login(server, "alice");
        var sb = new StringBuilder();
        for (int i = 0; i < 300; i++) sb.Append($"<iq type='get' id='q{i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        for (int i = 0; i < 150; i++) sb.Append($"<message to='bob@localhost' type='chat' id='m{i}'><body>{i}</body></message>");
        await alice.SendRawAsync(sb.ToString());
        for (int i = 0; i < 300; i++)
        {
            var r = await alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("id")!.StartsWith('q'));
            Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
        }
        for (int i = 0; i < 150; i++) await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m" + i);
        Assert.That(await alice.TryReceiveAsync(e => e.Attr("type") == "error", TimeSpan.FromMilliseconds(200)), Is.Null);
    }

    [Test]
    public async Task Subscription_requests_to_many_contacts_are_limited_and_repeats_to_one_are_not_delivered_again()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:RateLimits:SubscriptionRequestsPerMinute"] = "0.01";
            o["Xmpp:RateLimits:SubscriptionRequestBurst"] = "13";
        }, "alice", "bob");
        await using var bob = await Login(server, "bob");
        await using var alice = await Login(server, "alice");
        // Ten requests to one contact: bob is asked once (RFC 6121 A.3.1, a pending request is not delivered again).
        for (int i = 0; i < 10; i++) await alice.SendAsync($"<presence to='bob@localhost' type='subscribe' id='s{i}'/>");
        await bob.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe");
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe", TimeSpan.FromMilliseconds(400)), Is.Null);
        // Requests to many addresses: three more fit in the burst, the fourth is refused.
        for (int i = 0; i < 4; i++) await alice.SendAsync($"<presence to='stranger{i}@localhost' type='subscribe' id='x{i}'/>");
        var error = await alice.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "error" && e.Attr("id") == "x3");
        AssertWaitPolicyViolation(error);
        Assert.That(error.Attr("from"), Is.EqualTo("stranger3@localhost"));
    }

    [Test]
    public async Task A_full_roster_refuses_new_items_and_strangers_requests()
    {
        await using var server = await Server(o => o["Xmpp:Limits:MaxRosterItems"] = "3", "alice", "mallory");
        await using var alice = await Login(server, "alice");
        for (int i = 0; i < 3; i++)
        {
            var ok = await alice.IqAsync($"<iq type='set'><query xmlns='jabber:iq:roster'><item jid='friend{i}@example.net'/></query></iq>");
            Assert.That(ok.Attr("type"), Is.EqualTo("result"), ok.ToString());
        }
        var full = await alice.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='friend3@example.net'/></query></iq>");
        Assert.That(Condition(full), Is.EqualTo(StanzaErrors.NotAllowed), full.ToString());
        // Changing an item already there is still allowed.
        var rename = await alice.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='friend0@example.net' name='Zero'/></query></iq>");
        Assert.That(rename.Attr("type"), Is.EqualTo("result"), rename.ToString());

        // A stranger's request would add a hidden item: refused, and the stranger is told.
        await using var mallory = await Login(server, "mallory");
        await mallory.SendAsync("<presence to='alice@localhost' type='subscribe' id='sub1'/>");
        var error = await mallory.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "error");
        Assert.That(Condition(error), Is.EqualTo(StanzaErrors.NotAllowed), error.ToString());
        Assert.That(await alice.TryReceiveAsync(e => e.Attr("type") == "subscribe", TimeSpan.FromMilliseconds(300)), Is.Null);
        var roster = await alice.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(roster.Child("query", Ns.Roster)!.Elements("item", Ns.Roster).Count(), Is.EqualTo(3));
    }

    [Test]
    public async Task A_pep_item_over_the_size_limit_is_payload_too_big()
    {
        await using var server = await Server(o => o["Xmpp:Pep:MaxItemBytes"] = "2048", "alice");
        await using var alice = await Login(server, "alice");
        string Publish(int chars) =>
            "<iq type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:example:big'><item id='current'>" +
            $"<data xmlns='urn:example:big'>{new string('x', chars)}</data></item></publish></pubsub></iq>";
        var small = await alice.IqAsync(Publish(1000));
        Assert.That(small.Attr("type"), Is.EqualTo("result"), small.ToString());
        var big = await alice.IqAsync(Publish(4000));
        Assert.That(Condition(big), Is.EqualTo(StanzaErrors.NotAcceptable), big.ToString());
        // XEP-0060 §7.1.3.4
        Assert.That(big.Child("error", Ns.Client)!.Child("payload-too-big", "http://jabber.org/protocol/pubsub#errors"), Is.Not.Null, big.ToString());
    }

    [Test]
    public async Task Pep_items_past_the_account_total_are_refused_and_retracting_or_deleting_makes_room()
    {
        // 8 KiB for the whole account; each item about 3 KB, under the per-item limit.
        await using var server = await Server(o => o["Xmpp:Pep:MaxBytesPerAccount"] = "8192", "alice");
        await using var alice = await Login(server, "alice");
        async Task<Element> Publish(string node, string id) => await alice.IqAsync(
            $"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><publish node='urn:example:{node}'><item id='{id}'>" +
            $"<data xmlns='urn:example:big'>{new string('x', 3000)}</data></item></publish></pubsub></iq>");
        static void Accepted(Element reply) => Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());
        static void Refused(Element reply)
        {
            Assert.That(Condition(reply), Is.EqualTo(StanzaErrors.ResourceConstraint), reply.ToString());
            Assert.That(reply.Child("error", Ns.Client)!.Child("payload-too-big", Ns.PubSubErrors), Is.Null, "the item itself is not too big");
        }

        Accepted(await Publish("a", "1"));
        Accepted(await Publish("b", "1"));
        // A third item (a new id on a node that keeps several) would make about 9 KB.
        Accepted(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><configure node='urn:example:a'>" +
            $"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{Ns.PubSub}#node_config</value></field>" +
            "<field var='pubsub#max_items'><value>10</value></field></x></configure></pubsub></iq>"));
        Refused(await Publish("a", "2"));
        // Nor may a new node take it.
        Refused(await Publish("c", "1"));
        // Replacing an item (same id) takes no more room than it had.
        Accepted(await Publish("a", "1"));
        // Retracting an item makes room.
        Accepted(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSub}'><retract node='urn:example:b'><item id='1'/></retract></pubsub></iq>"));
        Accepted(await Publish("a", "2"));
        Refused(await Publish("a", "3"));
        // So does deleting a node.
        Accepted(await alice.IqAsync($"<iq type='set'><pubsub xmlns='{Ns.PubSubOwner}'><delete node='urn:example:a'/></pubsub></iq>"));
        Accepted(await Publish("c", "1"));
        Accepted(await Publish("c", "2"));
        // The refused items were never stored: the account holds what was accepted and not removed.
        var items = await alice.IqAsync($"<iq type='get'><pubsub xmlns='{Ns.PubSub}'><items node='urn:example:c'/></pubsub></iq>");
        Assert.That(items.Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Elements("item", Ns.PubSub).Select(i => i.Attr("id")),
            Is.EqualTo(new[] { "2" }), "urn:example:c keeps one item by default");
    }

    [Test]
    public async Task A_vcard_over_the_size_limit_is_not_acceptable()
    {
        await using var server = await Server(_ => { }, "alice");
        await using var alice = await Login(server, "alice");
        // 200,000 characters: over the vCard limit (128 KiB), under the stanza limit (256 KiB).
        var big = await alice.IqAsync($"<iq type='set'><vCard xmlns='vcard-temp'><DESC>{new string('x', 200_000)}</DESC></vCard></iq>");
        Assert.That(Condition(big), Is.EqualTo(StanzaErrors.NotAcceptable), big.ToString());
    }

    [Test]
    public async Task Mam_page_size_is_clamped_whatever_max_the_client_asks()
    {
        await using var server = await Server(o => o["Xmpp:Mam:MaxPageSize"] = "5", "alice", "bob");
        await using var alice = await Login(server, "alice");
        for (int i = 0; i < 12; i++) await alice.SendAsync($"<message to='bob@localhost' type='chat' id='m{i}'><body>{i}</body></message>");
        await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await alice.SendAsync("<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q1'><set xmlns='http://jabber.org/protocol/rsm'><max>1000000</max></set></query></iq>");
        int results = 0;
        Element fin;
        while (true)
        {
            var e = await alice.ReceiveAsync(e => e.Name == "iq" && e.Attr("id") == "mam1" || e.Child("result", Ns.Mam) is not null);
            if (e.Name == "iq") { fin = e; break; }
            results++;
        }
        Assert.That(fin.Attr("type"), Is.EqualTo("result"), fin.ToString());
        Assert.That(results, Is.EqualTo(5));
        Assert.That(fin.Child("fin", Ns.Mam)!.Attr("complete"), Is.Not.EqualTo("true"));
    }

    [Test]
    public async Task Room_joins_and_nick_changes_beyond_their_bursts_are_refused()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:RateLimits:MucJoinsPerMinute"] = "0.01";
            o["Xmpp:RateLimits:MucJoinBurst"] = "3";
            o["Xmpp:RateLimits:MucNickChangesPerMinute"] = "0.01";
            o["Xmpp:RateLimits:MucNickChangeBurst"] = "2";
        }, "alice");
        using var counts = new RefusalCounts(server);
        await using var alice = await Login(server, "alice");
        for (int i = 1; i <= 3; i++) await Modules.MucTestBase.JoinFullyAsync(alice, $"flood{i}@conference.localhost", "Alice");
        var refused = await Modules.MucTestBase.JoinAsync(alice, "flood4@conference.localhost", "Alice");
        AssertWaitPolicyViolation(refused);
        Assert.That(counts["muc-join-rate"], Is.EqualTo(1));
        Assert.That(counts["muc-nick-rate"], Is.Zero);

        for (int i = 1; i <= 2; i++)
        {
            await alice.SendAsync($"<presence to='flood1@conference.localhost/Alice{i}'/>");
            await alice.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == $"flood1@conference.localhost/Alice{i}");
        }
        await alice.SendAsync("<presence to='flood1@conference.localhost/Alice3' id='nick3'/>");
        var error = await alice.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "error");
        AssertWaitPolicyViolation(error);
        // Counted in xmppd_limits_refused_total{limit} like the stanza rates, so an operator sees floods being refused.
        Assert.That(counts["muc-nick-rate"], Is.EqualTo(1));
        Assert.That(counts["muc-join-rate"], Is.EqualTo(1));
    }

    [Test]
    public async Task Upload_slots_beyond_the_burst_are_refused()
    {
        await using var server = await Server(o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:RateLimits:UploadSlotsPerMinute"] = "0.01";
            o["Xmpp:RateLimits:UploadSlotBurst"] = "3";
        }, "alice");
        using var counts = new RefusalCounts(server);
        await using var alice = await Login(server, "alice");
        for (int i = 0; i < 3; i++) await UploadClient.SlotAsync(alice, server, $"f{i}.txt", 100, "text/plain");
        Assert.That(counts["upload-slot-rate"], Is.Zero);
        var refused = await UploadClient.RequestAsync(alice, server, "f3.txt", 100, "text/plain");
        AssertWaitPolicyViolation(refused);
        Assert.That(counts["upload-slot-rate"], Is.EqualTo(1));
    }

    [Test]
    public async Task A_tls_handshake_that_never_finishes_is_cut_off()
    {
        await using var server = await Server(o => o["Xmpp:Limits:TlsHandshakeTimeoutSeconds"] = "1");
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.C2sTlsPort);
        var stream = tcp.GetStream();
        await stream.WriteAsync(new byte[] { 0x16, 0x03, 0x01, 0x00, 0x80 }); // a ClientHello record header, then silence
        var sw = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            while (await stream.ReadAsync(new byte[256], cts.Token) > 0) { } // perhaps an alert, then the close
        }
        catch (IOException)
        {
            // a reset counts as closed too
        }
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
    }

    [Test]
    public async Task Direct_tls_connections_over_the_per_ip_limit_are_closed_before_the_handshake()
    {
        await using var server = await Server(o => o["Xmpp:Limits:MaxConnectionsPerIp"] = "1");
        await using var first = await TestClient.ConnectRawAsync(server, directTls: true);
        await first.OpenStreamAsync();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.C2sTlsPort);
        await using var ssl = new SslStream(tcp.GetStream());
        var options = new SslClientAuthenticationOptions { TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true };
        Assert.That(async () => await ssl.AuthenticateAsClientAsync(options).WaitAsync(TimeSpan.FromSeconds(10)),
            Throws.InstanceOf<IOException>().Or.InstanceOf<System.Security.Authentication.AuthenticationException>());
    }

    [Test]
    public async Task An_inbound_server_stream_that_never_authenticates_is_closed()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:S2s:Enabled"] = "true";
            o["Xmpp:S2s:Port"] = TestServer.FreePort().ToString();
            o["Xmpp:S2s:SetupTimeoutSeconds"] = "1";
        });
        await using var raw = await RawS2sClient.ConnectAsync(server.Options.S2s.Port, "slow.example", "localhost");
        var sw = Stopwatch.StartNew();
        Assert.That(await raw.ReadStreamErrorAsync(TimeSpan.FromSeconds(10)), Is.EqualTo(StreamErrors.ConnectionTimeout));
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
    }

    // A slowloris that never goes quiet: one byte of an element that never ends every 100 ms, from the given writer,
    // while the stream error is awaited. The setup timeouts count from the connection, not from the last byte, so the
    // trickle does not keep the stream alive. Returns the error and how long the trickle lasted.
    private static async Task<(string? Error, TimeSpan Elapsed)> TrickleUntilClosedAsync(Func<string, Task> send, Task<string?> error, string element)
    {
        var clock = Stopwatch.StartNew();
        var unfinished = element + new string('A', 300); // 30 s of bytes at this pace
        for (int i = 0; i < unfinished.Length && !error.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(15); i++)
        {
            try
            {
                await send(unfinished[i].ToString());
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                break; // closed under us; the error says why
            }
            await Task.WhenAny(error, Task.Delay(100));
        }
        return (await error, clock.Elapsed);
    }

    [Test]
    public async Task A_client_trickling_an_unfinished_auth_element_is_cut_off_at_the_unauthenticated_timeout()
    {
        await using var server = await Server(o => o["Xmpp:Limits:UnauthenticatedTimeoutSeconds"] = "1");
        await using var c = await TestClient.ConnectRawAsync(server);
        await c.OpenStreamAsync();
        var (error, elapsed) = await TrickleUntilClosedAsync(c.SendRawAsync, c.ReadStreamErrorAsync(TimeSpan.FromSeconds(20)),
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>");
        Assert.That(error, Is.EqualTo(StreamErrors.ConnectionTimeout));
        Assert.That(elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
    }

    [Test]
    public async Task An_inbound_server_stream_trickling_an_unfinished_dialback_element_is_cut_off_at_the_setup_timeout()
    {
        await using var server = await Server(o =>
        {
            o["Xmpp:S2s:Enabled"] = "true";
            o["Xmpp:S2s:Port"] = TestServer.FreePort().ToString();
            o["Xmpp:S2s:SetupTimeoutSeconds"] = "1";
        });
        await using var raw = await RawS2sClient.ConnectAsync(server.Options.S2s.Port, "slow.example", "localhost");
        var (error, elapsed) = await TrickleUntilClosedAsync(raw.SendRawAsync, raw.ReadStreamErrorAsync(TimeSpan.FromSeconds(20)),
            "<db:result from='slow.example' to='localhost'>");
        Assert.That(error, Is.EqualTo(StreamErrors.ConnectionTimeout));
        Assert.That(elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
    }

    [Test]
    public async Task Http_headers_sent_too_slowly_end_the_connection()
    {
        await using var server = await Server(o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:Http:RequestHeadersTimeoutSeconds"] = "1";
        });
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.HttpPort);
        await using var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        });
        await ssl.WriteAsync("GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\nX-Slow: "u8.ToArray());
        var sw = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var answer = new MemoryStream();
        var buffer = new byte[1024];
        int n;
        try
        {
            while ((n = await ssl.ReadAsync(buffer, cts.Token)) > 0) answer.Write(buffer, 0, n);
        }
        catch (IOException)
        {
            // a reset counts as closed too
        }
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        var text = Encoding.ASCII.GetString(answer.ToArray());
        Assert.That(text.Length == 0 || text.StartsWith("HTTP/1.1 408", StringComparison.Ordinal), text);
    }
}
