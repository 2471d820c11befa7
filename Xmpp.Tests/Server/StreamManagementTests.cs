using Microsoft.Extensions.DependencyInjection;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;
using Xmpp.Server.Streams.StreamManagement;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// XEP-0198 Stream Management over real sockets: enabling, acks both ways, resumption after a lost connection,
/// and what happens to unacknowledged messages when a session really ends.
[TestFixture]
public sealed class StreamManagementTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);

    private static async Task<TestServer> Server(int resumeSeconds = 60, int? maxUnacked = null)
    {
        var s = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:StreamManagement:ResumeTimeoutSeconds"] = resumeSeconds.ToString();
            if (maxUnacked is { } m) o["Xmpp:StreamManagement:MaxUnackedStanzas"] = m.ToString();
        });
        await s.AddUserAsync("alice", "alice-pw");
        await s.AddUserAsync("bob", "bob-pw");
        return s;
    }

    /// A client that records every stanza it receives, so it can tell the server its 'h'.
    private sealed class SmClient(TestClient client) : IAsyncDisposable
    {
        public TestClient C { get; } = client;
        public List<Element> Stanzas { get; } = [];
        public List<Element> Nonzas { get; } = [];
        public string? Id { get; set; }
        public uint H => (uint)Stanzas.Count;
        public IEnumerable<string?> MessageIds => Stanzas.Where(s => s.Name == "message").Select(s => s.Attr("id"));

        /// Reads until the condition holds over what was received; false on timeout or when the stream ended.
        public async Task<bool> CollectUntilAsync(Func<SmClient, bool> done, TimeSpan? timeout = null)
        {
            var deadline = DateTime.UtcNow + (timeout ?? TestClient.DefaultTimeout);
            while (!done(this))
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                try { Record(await C.ReceiveAsync(_ => true, left)); }
                catch (TimeoutException) { return false; }
                catch (IOException) { return done(this); }
            }
            return true;
        }

        /// Everything still buffered after the connection is gone.
        public async Task CollectRestAsync() => await CollectUntilAsync(_ => false, TimeSpan.FromSeconds(2));

        private void Record(Element e)
        {
            if (e.Namespace == Ns.Client) Stanzas.Add(e);
            else Nonzas.Add(e);
        }

        public ValueTask DisposeAsync() => C.DisposeAsync();
    }

    private static async Task<SmClient> EnabledAsync(TestServer s, string user, string resource, bool resume = true, bool presence = true)
    {
        var c = new SmClient(await TestClient.ConnectAsync(s, user, user + "-pw", resource));
        await c.C.SendAsync(resume ? "<enable xmlns='urn:xmpp:sm:3' resume='true'/>" : "<enable xmlns='urn:xmpp:sm:3'/>");
        var enabled = await c.C.ReceiveAsync(e => e.Is("enabled", Ns.StreamManagement));
        c.Id = enabled.Attr("id");
        if (presence) await c.C.SendAsync("<presence/>");
        return c;
    }

    /// A fresh connection for the same account that sends &lt;resume/&gt; in place of binding.
    private static async Task<(TestClient Client, Element Answer)> ResumeAsync(TestServer s, string user, string? previd, uint h)
    {
        var c = await TestClient.OpenAsync(s);
        await c.AuthenticateAsync(user, user + "-pw");
        Assert.That(c.Features!.Child("sm", Ns.StreamManagement), Is.Not.Null, "the <sm/> feature is offered after authentication");
        await c.SendAsync(new Element("resume", Ns.StreamManagement).SetAttr("previd", previd).SetAttr("h", h.ToString()));
        return (c, await c.ReadElementAsync());
    }

    private static StreamManagementSession? Sm(TestServer s, string fullJid) =>
        (s.Get<ISessionDirectory>().Find(Jid.Parse(fullJid))?.Sink as ClientSession)?.StreamManagement;

    private static async Task SendMessagesAsync(TestClient from, string to, int first, int last)
    {
        for (int i = first; i <= last; i++)
            await from.SendAsync($"<message to='{to}' type='chat' id='m{i}'><body>{i}</body></message>");
    }

    private static async Task Settle(TestClient c) =>
        await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

    private static string[] Ids(int first, int last) => Enumerable.Range(first, last - first + 1).Select(i => "m" + i).ToArray();

    [Test]
    public async Task The_sm_feature_is_offered_after_authentication_and_enable_returns_a_resumable_id_and_max()
    {
        await using var server = await Server(resumeSeconds: 120);
        await using var c = await TestClient.OpenAsync(server);
        Assert.That(c.Features!.Child("sm", Ns.StreamManagement), Is.Null, "not before authentication");
        await c.AuthenticateAsync("bob", "bob-pw");
        Assert.That(c.Features!.Child("sm", Ns.StreamManagement), Is.Not.Null);
        await c.BindAsync("phone");
        c.StartReading();
        await c.SendAsync("<enable xmlns='urn:xmpp:sm:3' resume='true' max='60'/>");
        var enabled = await c.ReceiveAsync(e => e.Name == "enabled");
        Assert.That(X.Matches(enabled, X.Parse("<enabled xmlns='urn:xmpp:sm:3' id='*' resume='true' max='60'/>")), enabled.ToString());

        await c.SendAsync("<enable xmlns='urn:xmpp:sm:3'/>");
        var again = await c.ReceiveAsync(e => e.Name == "failed");
        Assert.That(again.Child("unexpected-request", Ns.StanzaErrors), Is.Not.Null, "XEP-0198 §3: enabled only once");
    }

    [Test]
    public async Task Enable_before_binding_fails_with_unexpected_request_and_binding_still_works()
    {
        await using var server = await Server();
        await using var c = await TestClient.OpenAsync(server);
        await c.AuthenticateAsync("bob", "bob-pw");
        await c.SendAsync("<enable xmlns='urn:xmpp:sm:3'/>");
        var failed = await c.ReadElementAsync();
        Assert.That(X.Matches(failed, X.Parse("<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")), failed.ToString());
        await c.BindAsync("phone");
    }

    [Test]
    public async Task An_ack_request_before_enabling_is_an_unsupported_stanza_type()
    {
        await using var server = await Server();
        await using var c = await TestClient.ConnectAsync(server, "bob", "bob-pw", "phone");
        await c.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        var error = await c.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.FirstElement?.Name, Is.EqualTo(StreamErrors.UnsupportedStanzaType));
    }

    [Test]
    public async Task The_server_counts_handled_stanzas_and_answers_r_with_h()
    {
        await using var server = await Server();
        await using var bob = await EnabledAsync(server, "bob", "phone", presence: false);
        await bob.C.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        Assert.That((await bob.C.ReceiveAsync(e => e.Name == "a")).Attr("h"), Is.EqualTo("0"));

        await bob.C.SendAsync("<presence/>");
        await bob.C.SendAsync("<iq type='get' to='localhost' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
        await bob.C.SendAsync("<message to='alice@localhost' type='chat' id='x'><body>hi</body></message>");
        await bob.C.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        var a = await bob.C.ReceiveAsync(e => e.Name == "a");
        Assert.That(a.Namespace, Is.EqualTo(Ns.StreamManagement));
        Assert.That(a.Attr("h"), Is.EqualTo("3"), "presence, iq and message each count once; nonzas do not");
        // The message to offline alice was durably spooled before it was acknowledged.
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("alice"), Is.EqualTo(1));
    }

    /// Storage whose flushes wait until the test opens the gate (the LiteDB storage underneath does the writes).
    private sealed class GatedFlushStorage(IStorage inner) : IStorage
    {
        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public IAccountStore Accounts => inner.Accounts;
        public IRosterStore Rosters => inner.Rosters;
        public IArchiveStore Archive(string collection) => inner.Archive(collection);
        public IKeyValueStore KeyValue => inner.KeyValue;
        public IUploadStore Uploads => inner.Uploads;
        public async Task FlushAsync()
        {
            await Gate.Task;
            await inner.FlushAsync();
        }
        public int PendingWrites => inner.PendingWrites;
        public ValueTask DisposeAsync()
        {
            Gate.TrySetResult();
            return inner.DisposeAsync();
        }
    }

    [Test]
    public async Task An_ack_waits_for_the_storage_flush_but_the_stream_goes_on_and_acks_keep_their_order()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-sm-gate-" + Guid.NewGuid().ToString("N"));
        try
        {
            await AckOrderAsync(dir);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task AckOrderAsync(string dir)
    {
        GatedFlushStorage? storage = null;
        await using var server = await TestServer.StartAsync(services: s =>
            s.AddSingleton<IStorage>(_ => storage = new GatedFlushStorage(new Xmpp.Storage.LiteDb.LiteDbStorage(dir))));
        await server.AddUserAsync("alice", "alice-pw");
        await server.AddUserAsync("bob", "bob-pw");
        await server.AddUserAsync("carol", "carol-pw");
        await using var carol = await TestClient.ConnectAsync(server, "carol", "carol-pw", "desk");
        await carol.SendAsync("<presence/>");
        await using var bob = await EnabledAsync(server, "bob", "phone", presence: false);

        // To offline alice (spooled), then an ack request, then a message to online carol.
        await bob.C.SendAsync("<message to='alice@localhost' type='chat' id='m1'><body>1</body></message>");
        await bob.C.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        await bob.C.SendAsync("<message to='carol@localhost' type='chat' id='m2'><body>2</body></message>");
        var m2 = await carol.ReceiveAsync(e => e.Name == "message");
        Assert.That(m2.Attr("id"), Is.EqualTo("m2"), "the stream was not held by the ack's flush");
        await bob.C.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        Assert.That(await bob.CollectUntilAsync(c => c.Nonzas.Any(n => n.Name == "a"), Quiet), Is.False,
            "no ack before the flush is done");

        storage!.Gate.SetResult();
        Assert.That(await bob.CollectUntilAsync(c => c.Nonzas.Count(n => n.Name == "a") == 2), Is.True);
        Assert.That(bob.Nonzas.Where(n => n.Name == "a").Select(n => n.Attr("h")), Is.EqualTo(new[] { "1", "2" }),
            "each answer carries the count at its request, in request order");
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("alice"), Is.EqualTo(1));
    }

    [Test]
    public async Task The_server_requests_acks_and_releases_what_the_client_acknowledges()
    {
        await using var server = await Server();
        await using var bob = await EnabledAsync(server, "bob", "phone");
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        await SendMessagesAsync(alice, "bob@localhost/phone", 1, 5);
        Assert.That(await bob.CollectUntilAsync(b => b.MessageIds.Count() == 5 && b.Nonzas.Any(n => n.Is("r", Ns.StreamManagement))),
            "all five arrive and the server asks for an ack");
        var sm = Sm(server, "bob@localhost/phone")!;
        Assert.That(sm.UnackedCount, Is.EqualTo(bob.H), "everything sent is kept until acknowledged");

        await bob.C.SendAsync($"<a xmlns='urn:xmpp:sm:3' h='{bob.H - 2}'/>");
        Assert.That(await Wait.UntilAsync(() => sm.UnackedCount == 2), Is.True, "an ack releases up to h");
        await bob.C.SendAsync($"<a xmlns='urn:xmpp:sm:3' h='{bob.H}'/>");
        Assert.That(await Wait.UntilAsync(() => sm.UnackedCount == 0), Is.True);
    }

    [Test]
    public async Task The_server_asks_with_the_first_stanza_after_a_quiet_spell_then_paces_its_requests_unless_enough_wait()
    {
        // A long interval, so that "at once" and "paced" cannot be confused on a slow machine.
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:StreamManagement:AckRequestIntervalMilliseconds"] = "3000";
            o["Xmpp:StreamManagement:AckRequestEveryStanzas"] = "10";
        });
        await server.AddUserAsync("alice", "alice-pw");
        await server.AddUserAsync("bob", "bob-pw");
        await using var bob = await EnabledAsync(server, "bob", "phone");
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        int Requests() => bob.Nonzas.Count(n => n.Is("r", Ns.StreamManagement));

        // The first stanza carries its request with it.
        await SendMessagesAsync(alice, "bob@localhost/phone", 1, 1);
        Assert.That(await bob.CollectUntilAsync(b => b.MessageIds.Count() == 1 && Requests() == 1, TimeSpan.FromSeconds(2)), Is.True);
        await bob.C.SendAsync($"<a xmlns='urn:xmpp:sm:3' h='{bob.H}'/>");
        Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/phone")!.UnackedCount == 0), Is.True);

        // Within the interval a few more are not asked about at once, but once the interval is over.
        await SendMessagesAsync(alice, "bob@localhost/phone", 2, 5);
        Assert.That(await bob.CollectUntilAsync(b => b.MessageIds.Count() == 5, TimeSpan.FromSeconds(2)), Is.True);
        Assert.That(await bob.CollectUntilAsync(_ => Requests() > 1, Quiet), Is.False, "paced: no request right away");
        Assert.That(await bob.CollectUntilAsync(_ => Requests() == 2, TimeSpan.FromSeconds(10)), Is.True, "asked once the interval is over");
        await bob.C.SendAsync($"<a xmlns='urn:xmpp:sm:3' h='{bob.H}'/>");
        Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/phone")!.UnackedCount == 0), Is.True);

        // Ten waiting make the server ask at once, long before the interval is over.
        await SendMessagesAsync(alice, "bob@localhost/phone", 6, 17);
        Assert.That(await bob.CollectUntilAsync(b => b.MessageIds.Count() == 17 && Requests() == 3, TimeSpan.FromSeconds(2)), Is.True,
            "ten unacknowledged stanzas are asked about at once");
        Assert.That(await bob.CollectUntilAsync(_ => Requests() > 3, Quiet), Is.False, "one request outstanding at a time");
    }

    [Test]
    public async Task An_ack_for_more_than_was_sent_ends_the_stream_with_handled_count_too_high()
    {
        await using var server = await Server();
        await using var bob = await EnabledAsync(server, "bob", "phone", presence: false);
        await bob.C.SendAsync("<a xmlns='urn:xmpp:sm:3' h='7'/>");
        var error = await bob.C.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child(StreamErrors.UndefinedCondition, "urn:ietf:params:xml:ns:xmpp-streams"), Is.Not.Null, error.ToString());
        Assert.That(X.Matches(error, X.Parse("<error xmlns='http://etherx.jabber.org/streams'><handled-count-too-high xmlns='urn:xmpp:sm:3' h='7' send-count='0'/></error>")), error.ToString());
    }

    [Test]
    public async Task An_ack_without_a_number_is_a_bad_format_stream_error()
    {
        await using var server = await Server();
        await using var bob = await EnabledAsync(server, "bob", "phone", presence: false);
        await bob.C.SendAsync("<a xmlns='urn:xmpp:sm:3' h='-1'/>");
        var error = await bob.C.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.FirstElement?.Name, Is.EqualTo(StreamErrors.BadFormat));
    }

    [Test]
    public async Task A_resumed_stream_gets_every_message_exactly_once_in_order_even_those_sent_while_the_socket_was_gone()
    {
        await using var server = await Server();
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        var bob = await EnabledAsync(server, "bob", "phone");
        await SendMessagesAsync(alice, "bob@localhost/phone", 1, 10);
        Assert.That(await bob.CollectUntilAsync(b => b.MessageIds.Contains("m10")), Is.True);

        bob.C.Abort();
        await bob.CollectRestAsync();
        // Messages keep coming while the phone has no connection.
        var sending = SendMessagesAsync(alice, "bob@localhost/phone", 11, 20);
        await sending;
        Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/phone")?.IsDetached == true), Is.True,
            "the session stays bound, detached, waiting for resumption");

        var (c2, answer) = await ResumeAsync(server, "bob", bob.Id, bob.H);
        Assert.That(X.Matches(answer, X.Parse($"<resumed xmlns='urn:xmpp:sm:3' previd='{bob.Id}' h='1'/>")), answer.ToString());
        c2.StartReading();
        await using var bob2 = new SmClient(c2);
        var more = SendMessagesAsync(alice, "bob@localhost/phone", 21, 30);
        Assert.That(await bob2.CollectUntilAsync(b => b.MessageIds.Contains("m30")), Is.True, string.Join(",", bob2.MessageIds));
        await more;
        await Settle(alice);
        Assert.That(await bob2.C.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null, "nothing arrives twice");
        Assert.That(bob.MessageIds.Concat(bob2.MessageIds), Is.EqualTo(Ids(1, 30)));
        Assert.That(server.Get<ISessionDirectory>().Find(Jid.Parse("bob@localhost/phone")), Is.Not.Null);
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.Zero, "nothing went to the spool");
    }

    [Test]
    public async Task Resuming_while_the_old_connection_is_still_open_replaces_it_with_a_conflict()
    {
        await using var server = await Server();
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        await using var bob = await EnabledAsync(server, "bob", "phone");
        await SendMessagesAsync(alice, "bob@localhost/phone", 1, 3);
        Assert.That(await bob.CollectUntilAsync(b => b.MessageIds.Count() == 3), Is.True);

        var (c2, answer) = await ResumeAsync(server, "bob", bob.Id, bob.H);
        Assert.That(answer.Name, Is.EqualTo("resumed"), answer.ToString());
        c2.StartReading();
        await using var bob2 = new SmClient(c2);
        var error = await bob.C.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.FirstElement?.Name, Is.EqualTo(StreamErrors.Conflict));

        await SendMessagesAsync(alice, "bob@localhost/phone", 4, 6);
        Assert.That(await bob2.CollectUntilAsync(b => b.MessageIds.Contains("m6")), Is.True);
        Assert.That(bob2.MessageIds, Is.EqualTo(Ids(4, 6)), "the new stream carries the session on");
        Assert.That(server.Get<ISessionDirectory>().Get(Jid.Parse("bob@localhost")).Count, Is.EqualTo(1));
    }

    [Test]
    public async Task Resuming_an_unknown_id_fails_with_item_not_found_and_the_client_can_bind_instead()
    {
        await using var server = await Server();
        var (c, answer) = await ResumeAsync(server, "bob", "no-such-session", 0);
        await using var _ = c;
        Assert.That(X.Matches(answer, X.Parse("<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")), answer.ToString());
        Assert.That(answer.Attr("h"), Is.Null, "nothing is known about that session");
        await c.BindAsync("phone");
    }

    [Test]
    public async Task Another_account_cannot_resume_a_session()
    {
        await using var server = await Server();
        var bob = await EnabledAsync(server, "bob", "phone");
        bob.C.Abort();
        var (c, answer) = await ResumeAsync(server, "alice", bob.Id, 0);
        await using var _ = c;
        Assert.That(answer.Child("item-not-found", Ns.StanzaErrors), Is.Not.Null, answer.ToString());
        Assert.That(Sm(server, "bob@localhost/phone"), Is.Not.Null, "bob's session is untouched");
    }

    [Test]
    public async Task After_the_resumption_timeout_resume_fails_with_the_h_of_the_old_session()
    {
        await using var server = await Server(resumeSeconds: 1);
        var bob = await EnabledAsync(server, "bob", "phone");
        await bob.C.SendAsync("<message to='alice@localhost' type='chat' id='x1'><body>one</body></message>");
        await Settle(bob.C);
        bob.C.Abort();
        Assert.That(await Wait.UntilAsync(() => server.Get<ISessionDirectory>().Find(Jid.Parse("bob@localhost/phone")) is null), Is.True,
            "the session ends when nobody resumes it");

        var (c, answer) = await ResumeAsync(server, "bob", bob.Id, 0);
        await using var _ = c;
        Assert.That(answer.Name, Is.EqualTo("failed"));
        Assert.That(answer.Child("item-not-found", Ns.StanzaErrors), Is.Not.Null);
        Assert.That(answer.Attr("h"), Is.EqualTo("3"), "presence, message and ping were handled in the old session");
    }

    [Test]
    public async Task Unacknowledged_messages_of_an_expired_session_reach_another_resource_once_and_its_unavailable_presence_waits_for_the_end()
    {
        await using var server = await Server(resumeSeconds: 4);
        await using var tablet = await TestClient.ConnectAsync(server, "bob", "bob-pw", "tablet", sendPresence: true);
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        var phone = await EnabledAsync(server, "bob", "phone");
        Assert.That(await tablet.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "bob@localhost/phone" && e.Attr("type") is null), Is.Not.Null);

        phone.C.Abort();
        await SendMessagesAsync(alice, "bob@localhost/phone", 1, 5);
        await Settle(alice);
        Assert.That(await tablet.TryReceiveAsync(e => e.Attr("from") == "bob@localhost/phone" && e.Attr("type") == "unavailable", TimeSpan.FromMilliseconds(800)),
            Is.Null, "losing the socket is not the end of the session");
        Assert.That(await tablet.TryReceiveAsync(e => e.Name == "message", TimeSpan.Zero), Is.Null, "queued for the phone meanwhile");

        Assert.That(await tablet.ReceiveAsync(e => e.Attr("from") == "bob@localhost/phone" && e.Attr("type") == "unavailable", TimeSpan.FromSeconds(10)),
            Is.Not.Null, "at the end of the session the unavailable presence goes out");
        var got = new List<Element>();
        for (int i = 0; i < 5; i++) got.Add(await tablet.ReceiveAsync("message"));
        Assert.That(got.Select(m => m.Attr("id")), Is.EqualTo(Ids(1, 5)));
        Assert.That(got.All(m => m.Child("delay", Ns.Delay)?.Attr("stamp") is { Length: > 0 }), "XEP-0203 delay on re-routed messages");
        Assert.That(got.All(m => m.Child("delay", Ns.Delay)?.Attr("from") == "localhost"));
        Assert.That(await tablet.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null, "exactly once");
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.Zero);
    }

    [Test]
    public async Task Unacknowledged_messages_of_an_expired_session_go_to_the_offline_spool_once_when_no_other_resource_is_online()
    {
        await using var server = await Server(resumeSeconds: 4);
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        var phone = await EnabledAsync(server, "bob", "phone");
        await SendMessagesAsync(alice, "bob@localhost", 1, 3);
        Assert.That(await phone.CollectUntilAsync(p => p.MessageIds.Count() == 3), Is.True);
        await Settle(phone.C);
        await phone.C.SendAsync($"<a xmlns='urn:xmpp:sm:3' h='{phone.H + 1}'/>"); // + the ping's answer
        Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/phone")?.UnackedCount == 0), Is.True);

        phone.C.Abort();
        await SendMessagesAsync(alice, "bob@localhost", 4, 8);
        await Settle(alice);
        Assert.That(Sm(server, "bob@localhost/phone")?.UnackedCount, Is.EqualTo(5), "queued in the detached session first");
        var spool = server.Get<IStorage>().Archive("offline");
        Assert.That(await Wait.UntilAsync(async () => await spool.CountAsync("bob") == 5, TimeSpan.FromSeconds(20)), Is.True,
            "the five unacknowledged ones, not the acknowledged three");

        await using var bob = await TestClient.ConnectAsync(server, "bob", "bob-pw", "laptop", sendPresence: true);
        var got = new List<Element>();
        for (int i = 0; i < 5; i++) got.Add(await bob.ReceiveAsync("message"));
        Assert.That(got.Select(m => m.Attr("id")), Is.EqualTo(Ids(4, 8)));
        Assert.That(got.All(m => m.Child("delay", Ns.Delay) is not null));
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null);
    }

    [Test]
    public async Task A_clean_close_ends_the_session_at_once_and_unacknowledged_messages_are_spooled()
    {
        await using var server = await Server();
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        var phone = await EnabledAsync(server, "bob", "phone");
        await SendMessagesAsync(alice, "bob@localhost/phone", 1, 2);
        Assert.That(await phone.CollectUntilAsync(p => p.MessageIds.Count() == 2), Is.True);
        await phone.C.CloseAsync();
        Assert.That(await Wait.UntilAsync(() => server.Get<ISessionDirectory>().Find(Jid.Parse("bob@localhost/phone")) is null), Is.True);
        Assert.That(await Wait.UntilAsync(async () => await server.Get<IStorage>().Archive("offline").CountAsync("bob") == 2), Is.True,
            "never acknowledged, so handled as undelivered (XEP-0198 §7 with RFC 6121 §8.5.3.2.1)");
        var (c, answer) = await ResumeAsync(server, "bob", phone.Id, 0);
        await using var _ = c;
        Assert.That(answer.Name, Is.EqualTo("failed"));
    }

    [Test]
    public async Task Unacknowledged_archive_results_and_carbon_copies_are_not_spooled_but_an_unacknowledged_message_is()
    {
        await using var server = await Server();
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        await SendMessagesAsync(alice, "bob@localhost", 1, 3);
        await Settle(alice);
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(3));

        var phone = await EnabledAsync(server, "bob", "phone");
        Assert.That(await phone.CollectUntilAsync(p => p.MessageIds.Count() == 3), Is.True, "the spool is drained");
        await phone.C.SendAsync($"<a xmlns='urn:xmpp:sm:3' h='{phone.H}'/>");
        Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/phone")?.UnackedCount == 0), Is.True);

        // Carbons on, then a second resource of bob's chats: the phone gets sent-carbons of it.
        await phone.C.SendAsync("<iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
        Assert.That(await phone.CollectUntilAsync(p => p.Stanzas.Any(e => e.Attr("id") == "carbons")), Is.True);
        await using (var laptop = await TestClient.ConnectAsync(server, "bob", "bob-pw", "laptop", sendPresence: true))
        {
            await laptop.SendAsync("<message to='alice@localhost' type='chat' id='from-laptop'><body>hi</body></message>");
            await Settle(laptop);
        }
        Assert.That(await phone.CollectUntilAsync(p => p.Stanzas.Any(e => e.Child("sent", Ns.Carbons) is not null)), Is.True);

        // The phone reads its archive (three messages), then one new message arrives; none of it is acknowledged.
        await phone.C.SendAsync("<iq type='set' id='mam'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>");
        Assert.That(await phone.CollectUntilAsync(p => p.Stanzas.Any(e => e.Attr("id") == "mam")), Is.True);
        Assert.That(phone.Stanzas.Count(e => e.Child("result", Ns.Mam) is not null), Is.GreaterThanOrEqualTo(3));
        await alice.SendAsync("<message to='bob@localhost/phone' type='chat' id='new'><body>new</body></message>");
        Assert.That(await phone.CollectUntilAsync(p => p.MessageIds.Contains("new")), Is.True);

        await phone.C.CloseAsync();
        Assert.That(await Wait.UntilAsync(() => server.Get<ISessionDirectory>().Find(Jid.Parse("bob@localhost/phone")) is null), Is.True);
        await server.Get<IStorage>().FlushAsync();
        // XEP-0198 §4 leaves re-routing to the server: only the message to bob is his again; the archive results and
        // the carbon copy are views of what is kept elsewhere and must not come back as new offline messages.
        Assert.That(await Wait.UntilAsync(async () => await server.Get<IStorage>().Archive("offline").CountAsync("bob") >= 1), Is.True);
        await Task.Delay(Quiet);
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.EqualTo(1));
        await using var tablet = await TestClient.ConnectAsync(server, "bob", "bob-pw", "tablet", sendPresence: true);
        Assert.That((await tablet.ReceiveAsync("message")).Attr("id"), Is.EqualTo("new"));
        Assert.That(await tablet.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null, "nothing else was spooled");
    }

    [Test]
    public async Task Without_resume_a_lost_connection_ends_the_session_at_once()
    {
        await using var server = await Server();
        var phone = await EnabledAsync(server, "bob", "phone", resume: false);
        Assert.That(phone.Id, Is.Null, "no SM-ID without resumption");
        phone.C.Abort();
        Assert.That(await Wait.UntilAsync(() => server.Get<ISessionDirectory>().Find(Jid.Parse("bob@localhost/phone")) is null), Is.True);
    }

    [Test]
    public async Task A_client_that_never_acks_is_closed_with_policy_violation_at_the_unacked_limit_and_nothing_is_lost()
    {
        await using var server = await Server(maxUnacked: 10);
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        await using var phone = await EnabledAsync(server, "bob", "phone");
        await SendMessagesAsync(alice, "bob@localhost/phone", 1, 15);
        await Settle(alice);
        var error = await phone.C.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.FirstElement?.Name, Is.EqualTo(StreamErrors.PolicyViolation));
        var spool = server.Get<IStorage>().Archive("offline");
        Assert.That(await Wait.UntilAsync(async () => await spool.CountAsync("bob") == 15), Is.True, "all fifteen are kept for bob");
    }

    [Test]
    public async Task A_detached_session_whose_queue_fills_up_ends_and_spools_everything()
    {
        await using var server = await Server(maxUnacked: 10);
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        var phone = await EnabledAsync(server, "bob", "phone");
        await Settle(phone.C);
        phone.C.Abort();
        Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/phone")?.IsDetached == true), Is.True);
        await SendMessagesAsync(alice, "bob@localhost/phone", 1, 12);
        await Settle(alice);
        Assert.That(await Wait.UntilAsync(() => server.Get<ISessionDirectory>().Find(Jid.Parse("bob@localhost/phone")) is null), Is.True,
            "a full queue ends the waiting session instead of growing");
        var spool = server.Get<IStorage>().Archive("offline");
        Assert.That(await Wait.UntilAsync(async () => await spool.CountAsync("bob") == 12), Is.True);
    }

    [Test]
    public async Task A_message_to_the_bare_jid_that_another_resource_also_got_is_not_delivered_again_when_the_session_expires()
    {
        await using var server = await Server(resumeSeconds: 3);
        await using var tablet = await TestClient.ConnectAsync(server, "bob", "bob-pw", "tablet", sendPresence: true);
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        var phone = await EnabledAsync(server, "bob", "phone");
        await Settle(phone.C);
        phone.C.Abort();
        Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/phone")?.IsDetached == true), Is.True);

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='both'><body>to every device</body></message>");
        Assert.That((await tablet.ReceiveAsync("message")).Attr("id"), Is.EqualTo("both"), "RFC 6121 §8.5.2.1.1: both resources get it");
        Assert.That(Sm(server, "bob@localhost/phone")?.UnackedCount, Is.GreaterThanOrEqualTo(1), "the phone's copy waits in its queue");
        Assert.That(await Wait.UntilAsync(() => server.Get<ISessionDirectory>().Find(Jid.Parse("bob@localhost/phone")) is null), Is.True);
        Assert.That(await tablet.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromSeconds(1)), Is.Null, "the tablet already has it");
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.Zero);
    }

    [Test]
    public async Task A_message_to_the_bare_jid_held_by_two_sessions_that_both_expire_is_spooled_once()
    {
        await using var server = await Server(resumeSeconds: 3);
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        var phone = await EnabledAsync(server, "bob", "phone");
        var tablet = await EnabledAsync(server, "bob", "tablet");
        await Settle(phone.C);
        await Settle(tablet.C);
        phone.C.Abort();
        tablet.C.Abort();
        Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/phone")?.IsDetached == true
            && Sm(server, "bob@localhost/tablet")?.IsDetached == true), Is.True);

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='both'><body>to every device</body></message>");
        await Settle(alice);
        Assert.That(Sm(server, "bob@localhost/phone")?.UnackedCount, Is.GreaterThanOrEqualTo(1), "each detached session holds a copy");
        Assert.That(Sm(server, "bob@localhost/tablet")?.UnackedCount, Is.GreaterThanOrEqualTo(1));

        var spool = server.Get<IStorage>().Archive("offline");
        Assert.That(await Wait.UntilAsync(() => server.Get<ISessionDirectory>().Get(Jid.Parse("bob@localhost")).Count == 0, TimeSpan.FromSeconds(15)),
            Is.True, "both sessions expire");
        await server.Get<IStorage>().FlushAsync();
        Assert.That(await Wait.UntilAsync(async () => await spool.CountAsync("bob") >= 1), Is.True, "neither delivered it, so it is kept");
        Assert.That(await spool.CountAsync("bob"), Is.EqualTo(1), "once, not once per copy");

        await using var laptop = await TestClient.ConnectAsync(server, "bob", "bob-pw", "laptop", sendPresence: true);
        Assert.That((await laptop.ReceiveAsync("message")).Attr("id"), Is.EqualTo("both"));
        Assert.That(await laptop.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null);
    }

    [Test]
    public async Task A_message_to_the_bare_jid_one_session_acknowledged_is_not_routed_again_when_the_other_expires()
    {
        await using var server = await Server(resumeSeconds: 3);
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
        var phone = await EnabledAsync(server, "bob", "phone");
        await using var tablet = await EnabledAsync(server, "bob", "tablet");
        await Settle(phone.C);
        phone.C.Abort();
        Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/phone")?.IsDetached == true), Is.True);

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='both'><body>to every device</body></message>");
        Assert.That(await tablet.CollectUntilAsync(t => t.MessageIds.Contains("both")), Is.True);
        await tablet.C.SendAsync($"<a xmlns='urn:xmpp:sm:3' h='{tablet.H}'/>");
        Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/tablet")?.UnackedCount == 0), Is.True);
        tablet.C.Abort();

        Assert.That(await Wait.UntilAsync(() => server.Get<ISessionDirectory>().Get(Jid.Parse("bob@localhost")).Count == 0, TimeSpan.FromSeconds(15)),
            Is.True);
        await server.Get<IStorage>().FlushAsync();
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("bob"), Is.Zero, "the tablet acknowledged it");
    }

    [Test]
    public async Task Resume_after_binding_fails_with_unexpected_request()
    {
        await using var server = await Server();
        await using var bob = await EnabledAsync(server, "bob", "phone");
        await bob.C.SendAsync($"<resume xmlns='urn:xmpp:sm:3' previd='{bob.Id}' h='0'/>");
        var failed = await bob.C.ReceiveAsync(e => e.Name == "failed");
        Assert.That(failed.Child("unexpected-request", Ns.StanzaErrors), Is.Not.Null, failed.ToString());
    }

    [Test]
    public async Task A_client_closed_for_not_answering_pings_can_still_resume()
    {
        var s = await TestServer.StartAsync(configure: o =>
        {
            o["Xmpp:Ping:IdleSeconds"] = "1";
            o["Xmpp:Ping:TimeoutSeconds"] = "1";
        });
        await using var server = s;
        await server.AddUserAsync("bob", "bob-pw");
        var bob = await EnabledAsync(server, "bob", "phone");
        // This client never answers the server's ping: the connection is declared dead (connection-timeout)...
        var error = await bob.C.ReceiveAsync(e => e.Is("error", Ns.Streams), TimeSpan.FromSeconds(15));
        Assert.That(error.FirstElement?.Name, Is.EqualTo(StreamErrors.ConnectionTimeout));
        await bob.CollectRestAsync();
        // ...which is exactly the case resumption exists for.
        var (c, answer) = await ResumeAsync(server, "bob", bob.Id, bob.H);
        await using var _ = c;
        Assert.That(answer.Name, Is.EqualTo("resumed"), answer.ToString());
    }

    [Test]
    public async Task Messages_waiting_in_a_detached_session_are_spooled_when_the_server_shuts_down()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-sm-" + Guid.NewGuid().ToString("N"));
        try
        {
            var server = await TestServer.StartAsync(dir);
            await server.AddUserAsync("alice", "alice-pw");
            await server.AddUserAsync("bob", "bob-pw");
            var phone = await EnabledAsync(server, "bob", "phone");
            await Settle(phone.C);
            phone.C.Abort();
            Assert.That(await Wait.UntilAsync(() => Sm(server, "bob@localhost/phone")?.IsDetached == true), Is.True);
            var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc");
            await SendMessagesAsync(alice, "bob@localhost/phone", 1, 4);
            await Settle(alice);
            await server.DisposeAsync();

            await using var again = await TestServer.StartAsync(dir);
            await using var bob = await TestClient.ConnectAsync(again, "bob", "bob-pw", "laptop", sendPresence: true);
            var got = new List<Element>();
            for (int i = 0; i < 4; i++) got.Add(await bob.ReceiveAsync("message"));
            Assert.That(got.Select(m => m.Attr("id")), Is.EqualTo(Ids(1, 4)));
            Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    [Test]
    public async Task Enabling_on_a_just_bound_session_through_the_api_returns_enabled_and_counts_from_then_on()
    {
        await using var server = await Server();
        await using var c = await TestClient.ConnectAsync(server, "bob", "bob-pw", "phone");
        var session = (ClientSession)server.Get<ISessionDirectory>().Find(Jid.Parse("bob@localhost/phone"))!.Sink;
        var service = server.Get<StreamManagementService>();

        var enabled = service.EnableOnBoundSession(session, resume: true);
        Assert.That(X.Matches(enabled, X.Parse("<enabled xmlns='urn:xmpp:sm:3' id='*' resume='true' max='60'/>")), enabled.ToString());
        Assert.That(await c.TryReceiveAsync(e => e.Name == "enabled", Quiet), Is.Null, "the caller sends it, e.g. inside a Bind2 reply");
        await c.SendAsync("<presence/>");
        await c.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        Assert.That((await c.ReceiveAsync(e => e.Name == "a")).Attr("h"), Is.EqualTo("1"));
        Assert.That(service.EnableOnBoundSession(session, resume: true).Name, Is.EqualTo("failed"), "only once per session");
    }
}
