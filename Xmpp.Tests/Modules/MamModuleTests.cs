using System.Diagnostics;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Mam;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0313 user archives over real sockets: what is archived, the XEP-0359 ids, every filter, RSM paging, preferences.
[TestFixture]
public sealed class MamModuleTests
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 8, 0, 0, TimeSpan.Zero);
    private int _queryIds;

    private static async Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null, string? dataDir = null)
    {
        var s = await TestServer.StartAsync(dataDir, configure);
        if (dataDir is null)
        {
            await s.AddUserAsync("alice", "alice-pw");
            await s.AddUserAsync("bob", "bob-pw");
            await s.AddUserAsync("carol", "carol-pw");
        }
        return s;
    }

    private static async Task<TestClient> Online(TestServer s, string user, string resource)
    {
        var c = await TestClient.ConnectAsync(s, user, user + "-pw", resource);
        await c.SendAsync("<presence/>");
        return c;
    }

    private static async Task Settle(TestClient c) =>
        await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

    private sealed record Page(List<Element> Results, Element Iq)
    {
        public Element? Fin => Iq.Child("fin", Ns.Mam);
        public bool Complete => Fin?.Attr("complete") == "true";
        public string? First => Fin?.Child("set", Ns.Rsm)?.ChildText("first", Ns.Rsm);
        public string? Last => Fin?.Child("set", Ns.Rsm)?.ChildText("last", Ns.Rsm);
        public int? Count => Fin?.Child("set", Ns.Rsm)?.ChildText("count", Ns.Rsm) is { } c ? int.Parse(c) : null;
        public string? Error => Iq.Attr("type") == "error" ? Iq.Child("error", Ns.Client)?.FirstElement?.Name : null;
        public IEnumerable<string> Ids => Results.Select(r => r.Child("result", Ns.Mam)!.Attr("id")!);
        public IEnumerable<Element> Messages => Results.Select(r => r.Child("result", Ns.Mam)!.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!);
        public IEnumerable<string> Bodies => Messages.Select(m => m.ChildText("body", Ns.Client) ?? "");
    }

    /// Sends a query (form fields as "var=value" pairs, an optional RSM set) and collects its results and iq answer.
    private async Task<Page> Query(TestClient c, string[]? fields = null, string? rsm = null, bool flip = false, string? extra = null)
    {
        var queryId = "q" + Interlocked.Increment(ref _queryIds);
        var form = new StringBuilder();
        if (fields is not null)
        {
            form.Append("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>");
            foreach (var group in fields.Select(f => f.Split('=', 2)).GroupBy(p => p[0]))
            {
                form.Append($"<field var='{group.Key}'>");
                foreach (var p in group) form.Append($"<value>{System.Security.SecurityElement.Escape(p[1])}</value>");
                form.Append("</field>");
            }
            form.Append("</x>");
        }
        var set = rsm is null ? "" : $"<set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set>";
        var iq = await c.IqAsync($"<iq type='set'><query xmlns='urn:xmpp:mam:2' queryid='{queryId}'>{form}{set}{(flip ? "<flip-page/>" : "")}{extra}</query></iq>",
            TimeSpan.FromSeconds(30));
        var results = new List<Element>();
        // Results precede the iq answer on the same stream, so they are already buffered.
        while (await c.TryReceiveAsync(e => e.Name == "message" && e.Child("result", Ns.Mam)?.Attr("queryid") == queryId,
                   TimeSpan.FromMilliseconds(1)) is { } m)
            results.Add(m);
        return new Page(results, iq);
    }

    private static string Message(string from, string to, int n) =>
        $"<message xmlns='jabber:client' from='{from}' to='{to}' type='chat' id='m{n}'><body>{n}</body></message>";

    /// Ten messages in alice's archive, one minute apart from T0, alternating bob (even) and carol (odd), ids "a0".."a9".
    private static async Task SeedAsync(TestServer s, int count = 10)
    {
        var archive = s.Get<IStorage>().Archive(MamModule.Collection);
        for (int n = 0; n < count; n++)
        {
            var peer = n % 2 == 0 ? "bob@localhost" : "carol@localhost";
            await archive.AppendAsync("alice", T0.AddMinutes(n), peer, Encoding.UTF8.GetBytes(Message(peer + "/x", "alice@localhost", n)), "a" + n);
        }
    }

    private static IEnumerable<string> Range(int from, int to) => Enumerable.Range(from, to - from + 1).Select(n => n.ToString());

    // ---- what is archived ----

    [Test]
    public async Task A_chat_message_is_archived_for_sender_and_recipient_and_the_delivered_copy_carries_the_archive_id()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");
        await using var bob = await Online(server, "bob", "phone");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='hello1'><body>Hello Bob</body></message>");
        var delivered = await bob.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "hello1");

        var stanzaIds = delivered.Elements("stanza-id", Ns.StanzaId).ToList();
        Assert.That(stanzaIds, Has.Count.EqualTo(1));
        Assert.That(stanzaIds[0].Attr("by"), Is.EqualTo("bob@localhost"));
        var bobs = await Query(bob);
        Assert.That(bobs.Ids, Is.EqualTo(new[] { stanzaIds[0].Attr("id") }), "the archive id is the delivered stanza-id");
        Assert.That(bobs.Bodies, Is.EqualTo(new[] { "Hello Bob" }));
        Assert.That(bobs.Messages.Single().Attr("from"), Is.EqualTo("alice@localhost/pc"));
        Assert.That(bobs.Results.Single().Attr("to"), Is.EqualTo("bob@localhost/phone"));
        Assert.That(bobs.Results.Single().Child("result", Ns.Mam)!.Child("forwarded", Ns.Forward)!.Child("delay", Ns.Delay)?.Attr("stamp"),
            Is.Not.Null);
        var alices = await Query(alice);
        Assert.That(alices.Bodies, Is.EqualTo(new[] { "Hello Bob" }));
        Assert.That(alices.Messages.Single().Attr("to"), Is.EqualTo("bob@localhost"));
        Assert.That(alices.Ids.Single(), Is.Not.EqualTo(bobs.Ids.Single()), "each archive has its own ids");
        Assert.That(alices.Complete, Is.True);
        Assert.That(alices.Count, Is.EqualTo(1));
    }

    [Test]
    public async Task Receipts_and_markers_are_archived_but_chat_states_headlines_and_no_store_messages_are_not()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");
        await using var bob = await Online(server, "bob", "phone");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='r1'><received xmlns='urn:xmpp:receipts' id='x1'/></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='d1'><displayed xmlns='urn:xmpp:chat-markers:0' id='x1'/></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='c1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await alice.SendAsync("<message to='bob@localhost' type='headline' id='h1'><body>news</body></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='n1'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='b1'><body>kept</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "b1");

        var bobs = await Query(bob);
        Assert.That(bobs.Messages.Select(m => m.Attr("id")), Is.EqualTo(new[] { "r1", "d1", "b1" }));
        Assert.That((await Query(alice)).Messages.Select(m => m.Attr("id")), Is.EqualTo(new[] { "r1", "d1", "b1" }));
    }

    [Test]
    public async Task A_forged_stanza_id_by_the_recipient_is_replaced_but_one_by_a_foreign_entity_is_kept()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");
        await using var bob = await Online(server, "bob", "phone");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='f1'><body>trust me</body>" +
            "<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='forged'/>" +
            "<stanza-id xmlns='urn:xmpp:sid:0' by='localhost' id='forged-too'/>" +
            "<stanza-id xmlns='urn:xmpp:sid:0' by='room@conference.example.org' id='foreign'/></message>");
        var delivered = await bob.ReceiveAsync(e => e.Attr("id") == "f1");

        var ids = delivered.Elements("stanza-id", Ns.StanzaId).ToDictionary(e => e.Attr("by")!, e => e.Attr("id"));
        Assert.That(ids.Keys, Is.EquivalentTo(new[] { "bob@localhost", "room@conference.example.org" }));
        Assert.That(ids["bob@localhost"], Is.Not.EqualTo("forged"));
        Assert.That(ids["room@conference.example.org"], Is.EqualTo("foreign"));
        Assert.That((await Query(bob)).Ids, Is.EqualTo(new[] { ids["bob@localhost"] }));
    }

    [Test]
    public async Task A_message_delivered_to_two_resources_is_archived_once_with_one_id()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");
        await using var phone = await Online(server, "bob", "phone");
        await using var laptop = await Online(server, "bob", "laptop");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='both'><body>to all of you</body></message>");
        var a = await phone.ReceiveAsync(e => e.Attr("id") == "both");
        var b = await laptop.ReceiveAsync(e => e.Attr("id") == "both");

        var page = await Query(phone);
        Assert.That(page.Ids, Is.EqualTo(new[] { a.Child("stanza-id", Ns.StanzaId)!.Attr("id") }));
        Assert.That(b.Child("stanza-id", Ns.StanzaId)!.Attr("id"), Is.EqualTo(page.Ids.Single()));
    }

    [Test]
    public async Task A_message_to_an_offline_account_is_archived_and_its_spooled_copy_carries_the_archive_id()
    {
        await using var server = await Server();
        await using (var alice = await Online(server, "alice", "pc"))
        {
            await alice.SendAsync("<message to='bob@localhost' type='chat' id='later'><body>while you sleep</body></message>");
            await Settle(alice);
        }

        await using var bob = await Online(server, "bob", "phone");
        var spooled = await bob.ReceiveAsync(e => e.Attr("id") == "later");
        var page = await Query(bob);

        Assert.That(page.Ids, Is.EqualTo(new[] { spooled.Child("stanza-id", Ns.StanzaId)!.Attr("id") }));
        Assert.That(spooled.Elements("stanza-id", Ns.StanzaId).Count(), Is.EqualTo(1));
    }

    [Test]
    public async Task A_message_to_the_own_account_is_archived_once()
    {
        await using var server = await Server();
        await using var pc = await Online(server, "alice", "pc");
        await using var phone = await Online(server, "alice", "phone");

        await pc.SendAsync("<message to='alice@localhost/phone' type='chat' id='note'><body>note to self</body></message>");
        await phone.ReceiveAsync(e => e.Attr("id") == "note");

        var page = await Query(pc, ["with=alice@localhost"]);
        Assert.That(page.Bodies, Is.EqualTo(new[] { "note to self" }));
    }

    // ---- filters ----

    [Test]
    public async Task With_filter_returns_only_that_contacts_messages_in_both_directions()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");
        await using var bob = await Online(server, "bob", "phone");
        await using var carol = await Online(server, "carol", "tablet");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='1'><body>to bob</body></message>");
        await alice.SendAsync("<message to='carol@localhost' type='chat' id='2'><body>to carol</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "1");
        await bob.SendAsync("<message to='alice@localhost' type='chat' id='3'><body>from bob</body></message>");
        await alice.ReceiveAsync(e => e.Attr("id") == "3");

        var page = await Query(alice, ["with=bob@localhost"]);
        Assert.That(page.Bodies, Is.EqualTo(new[] { "to bob", "from bob" }));
        Assert.That(page.Count, Is.EqualTo(2));
    }

    [TestCase("2024-06-01T08:03:00Z", null, 3, 9)]
    [TestCase(null, "2024-06-01T08:02:00Z", 0, 2)]
    [TestCase("2024-06-01T10:02:00+02:00", "2024-06-01T08:05:30.5Z", 2, 5)]
    public async Task Start_and_end_are_inclusive_instants(string? start, string? end, int first, int last)
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");
        var fields = new List<string>();
        if (start is not null) fields.Add("start=" + start);
        if (end is not null) fields.Add("end=" + end);

        var page = await Query(alice, [.. fields]);

        Assert.That(page.Bodies, Is.EqualTo(Range(first, last)));
        Assert.That(page.Complete, Is.True);
    }

    [Test]
    public async Task Ids_filter_returns_those_messages_in_archive_order()
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");

        var page = await Query(alice, ["ids=a7", "ids=a2", "ids=a4"]);

        Assert.That(page.Bodies, Is.EqualTo(new[] { "2", "4", "7" }));
        Assert.That(page.Ids, Is.EqualTo(new[] { "a2", "a4", "a7" }));
    }

    [Test]
    public async Task After_id_and_before_id_select_the_messages_between_two_known_ones()
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");

        var between = await Query(alice, ["after-id=a2", "before-id=a6"]);
        var after = await Query(alice, ["after-id=a7"]);
        var before = await Query(alice, ["before-id=a2"], rsm: "<max>1</max>");

        Assert.That(between.Bodies, Is.EqualTo(Range(3, 5)));
        Assert.That(after.Bodies, Is.EqualTo(Range(8, 9)));
        Assert.That(before.Bodies, Is.EqualTo(new[] { "0" }), "before-id does not page backwards");
        Assert.That(before.Complete, Is.False);
    }

    // ---- paging ----

    [Test]
    public async Task Paging_forward_with_after_visits_every_message_once_and_the_last_page_is_complete()
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");

        var p1 = await Query(alice, rsm: "<max>4</max>");
        var p2 = await Query(alice, rsm: $"<max>4</max><after>{p1.Last}</after>");
        var p3 = await Query(alice, rsm: $"<max>4</max><after>{p2.Last}</after>");

        Assert.That(p1.Bodies, Is.EqualTo(Range(0, 3)));
        Assert.That((p1.First, p1.Last, p1.Count, p1.Complete), Is.EqualTo(("a0", "a3", (int?)10, false)));
        Assert.That(p2.Bodies, Is.EqualTo(Range(4, 7)));
        Assert.That(p2.Complete, Is.False);
        Assert.That(p3.Bodies, Is.EqualTo(Range(8, 9)));
        Assert.That(p3.Complete, Is.True);
    }

    [Test]
    public async Task Paging_backward_from_an_empty_before_returns_the_newest_pages_in_chronological_order()
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");

        var p1 = await Query(alice, ["with=bob@localhost"], rsm: "<max>2</max><before/>");
        var p2 = await Query(alice, ["with=bob@localhost"], rsm: $"<max>2</max><before>{p1.First}</before>");
        var p3 = await Query(alice, ["with=bob@localhost"], rsm: $"<max>2</max><before>{p2.First}</before>");

        Assert.That(p1.Bodies, Is.EqualTo(new[] { "6", "8" }));
        Assert.That(p1.Complete, Is.False);
        Assert.That(p2.Bodies, Is.EqualTo(new[] { "2", "4" }));
        Assert.That(p2.Complete, Is.False);
        Assert.That(p3.Bodies, Is.EqualTo(new[] { "0" }));
        Assert.That(p3.Complete, Is.True, "the page holding the oldest message completes backward paging");
        Assert.That(p3.Count, Is.EqualTo(5));
    }

    [Test]
    public async Task A_flipped_page_holds_the_same_messages_sent_newest_first()
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");

        var page = await Query(alice, rsm: "<max>3</max><before/>", flip: true);

        Assert.That(page.Bodies, Is.EqualTo(new[] { "9", "8", "7" }));
        Assert.That((page.First, page.Last), Is.EqualTo(("a7", "a9")), "first and last stay the oldest and newest of the page");
    }

    [Test]
    public async Task A_max_above_the_limit_is_capped_and_no_max_means_the_limit()
    {
        await using var server = await Server(o => o["Xmpp:Mam:MaxPageSize"] = "4");
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");

        var asked = await Query(alice, rsm: "<max>1000</max>");
        var unasked = await Query(alice);

        Assert.That(asked.Bodies, Is.EqualTo(Range(0, 3)));
        Assert.That(asked.Complete, Is.False);
        Assert.That(unasked.Results, Has.Count.EqualTo(4));
        Assert.That(unasked.Count, Is.EqualTo(10));
    }

    [Test]
    public async Task Max_zero_returns_only_the_count()
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");

        var page = await Query(alice, rsm: "<max>0</max>");

        Assert.That(page.Results, Is.Empty);
        Assert.That(page.Count, Is.EqualTo(10));
        Assert.That(page.First, Is.Null);
    }

    // ---- errors ----

    [TestCase(null, "<after>nope</after>")]
    [TestCase(null, "<before>nope</before>")]
    [TestCase("after-id=nope", null)]
    [TestCase("before-id=nope", null)]
    [TestCase("ids=nope", null)]
    public async Task An_unknown_archive_id_is_item_not_found(string? field, string? rsm)
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");

        var page = await Query(alice, field is null ? null : [field], rsm);

        Assert.That(page.Error, Is.EqualTo("item-not-found"));
        Assert.That(page.Results, Is.Empty);
    }

    [Test]
    public async Task An_archive_id_far_longer_than_any_real_one_is_item_not_found()
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");
        var id = new string('a', 5000);

        Assert.That((await Query(alice, rsm: $"<after>{id}</after>")).Error, Is.EqualTo("item-not-found"));
        Assert.That((await Query(alice, ["ids=" + id])).Error, Is.EqualTo("item-not-found"));
    }

    [Test]
    public async Task Another_accounts_archive_ids_are_unknown_here()
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var bob = await Online(server, "bob", "phone");

        Assert.That((await Query(bob, rsm: "<after>a3</after>")).Error, Is.EqualTo("item-not-found"));
    }

    [TestCase("start=yesterday", null, null, "bad-request")]
    [TestCase("end=2024-06-01T08:00:00", null, null, "bad-request")]
    [TestCase("with=not a jid@@", null, null, "jid-malformed")]
    [TestCase("with=bob@localhost/phone", null, null, "feature-not-implemented")]
    [TestCase("include-groupchat=true", null, null, "feature-not-implemented")]
    [TestCase(null, "<max>-1</max>", null, "bad-request")]
    [TestCase(null, "<max>ten</max>", null, "bad-request")]
    [TestCase(null, "<index>3</index>", null, "feature-not-implemented")]
    [TestCase(null, "<after/>", null, "bad-request")]
    [TestCase(null, null, "<x xmlns='jabber:x:data' type='form'/>", "bad-request")]
    public async Task Bad_queries_get_the_spec_error(string? field, string? rsm, string? extra, string condition)
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");

        var page = await Query(alice, field is null ? null : [field], rsm, extra: extra);

        Assert.That(page.Error, Is.EqualTo(condition));
    }

    [Test]
    public async Task More_ids_than_the_limit_is_a_policy_violation()
    {
        await using var server = await Server(o => o["Xmpp:Mam:MaxIds"] = "3");
        await SeedAsync(server);
        await using var alice = await Online(server, "alice", "pc");

        Assert.That((await Query(alice, ["ids=a1", "ids=a2", "ids=a3"])).Results, Has.Count.EqualTo(3));
        Assert.That((await Query(alice, ["ids=a1", "ids=a2", "ids=a3", "ids=a4"])).Error, Is.EqualTo("policy-violation"));
    }

    [Test]
    public async Task Another_account_may_not_query_or_configure_an_archive()
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using var bob = await Online(server, "bob", "phone");

        var query = await bob.IqAsync("<iq type='set' to='alice@localhost'><query xmlns='urn:xmpp:mam:2'/></iq>");
        var prefs = await bob.IqAsync("<iq type='get' to='alice@localhost'><prefs xmlns='urn:xmpp:mam:2'/></iq>");

        Assert.That(X.Matches(query, "<iq type='error'><error><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"), query.ToString());
        Assert.That(X.Matches(prefs, "<iq type='error'><error><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"), prefs.ToString());
        Assert.That(await bob.TryReceiveAsync(e => e.Name == "message", TimeSpan.FromMilliseconds(200)), Is.Null);
    }

    // ---- discovery ----

    [Test]
    public async Task The_query_form_lists_the_supported_fields()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");

        var iq = await alice.IqAsync("<iq type='get'><query xmlns='urn:xmpp:mam:2'/></iq>");

        var form = iq.Child("query", Ns.Mam)!.Child("x", Ns.DataForms)!;
        Assert.That(form.Attr("type"), Is.EqualTo("form"));
        Assert.That(form.Elements("field", Ns.DataForms).Select(f => f.Attr("var")),
            Is.EquivalentTo(new[] { "FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids" }));
        Assert.That(form.Elements("field", Ns.DataForms).Single(f => f.Attr("var") == "ids").Child("validate", Ns.DataFormsValidate)?.Child("open", Ns.DataFormsValidate),
            Is.Not.Null);
    }

    [Test]
    public async Task The_account_advertises_mam_extended_and_stanza_ids()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");

        var info = await alice.IqAsync("<iq type='get' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");

        var features = info.Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).ToList();
        Assert.That(features, Is.SupersetOf(new[] { Ns.Mam, Ns.MamExtended, Ns.StanzaId }));
    }

    [Test]
    public async Task Metadata_names_the_first_and_last_archived_message()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");
        var empty = await alice.IqAsync("<iq type='get'><metadata xmlns='urn:xmpp:mam:2'/></iq>");
        await SeedAsync(server);

        var metadata = (await alice.IqAsync("<iq type='get'><metadata xmlns='urn:xmpp:mam:2'/></iq>")).Child("metadata", Ns.Mam)!;

        Assert.That(empty.Child("metadata", Ns.Mam)!.Elements().Any(), Is.False);
        Assert.That(metadata.Child("start", Ns.Mam)!.Attr("id"), Is.EqualTo("a0"));
        Assert.That(metadata.Child("start", Ns.Mam)!.Attr("timestamp"), Is.EqualTo("2024-06-01T08:00:00.000Z"));
        Assert.That(metadata.Child("end", Ns.Mam)!.Attr("id"), Is.EqualTo("a9"));
    }

    // ---- preferences (XEP-0441) ----

    [Test]
    public async Task Preferences_default_to_always_and_a_set_is_stored_and_returned()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");

        var initial = await alice.IqAsync("<iq type='get'><prefs xmlns='urn:xmpp:mam:2'/></iq>");
        var set = await alice.IqAsync("<iq type='set'><prefs xmlns='urn:xmpp:mam:2' default='roster'>" +
            "<always><jid>bob@localhost</jid></always><never><jid>carol@localhost</jid></never></prefs></iq>");
        var read = await alice.IqAsync("<iq type='get'><prefs xmlns='urn:xmpp:mam:2'/></iq>");

        Assert.That(initial.Child("prefs", Ns.Mam)!.Attr("default"), Is.EqualTo("always"));
        Assert.That(X.Matches(set, "<iq type='result'><prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>bob@localhost</jid></always><never><jid>carol@localhost</jid></never></prefs></iq>"), set.ToString());
        Assert.That(X.Matches(read, "<iq type='result'><prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>bob@localhost</jid></always><never><jid>carol@localhost</jid></never></prefs></iq>"), read.ToString());
    }

    [TestCase("<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>")]
    [TestCase("<prefs xmlns='urn:xmpp:mam:2'/>")]
    [TestCase("<prefs xmlns='urn:xmpp:mam:2' default='always'><never><jid>@@bad</jid></never></prefs>")]
    public async Task Malformed_preferences_are_a_bad_request(string prefs)
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");

        var iq = await alice.IqAsync($"<iq type='set'>{prefs}</iq>");

        Assert.That(X.Matches(iq, "<iq type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"), iq.ToString());
    }

    [Test]
    public async Task Default_never_archives_nothing_in_that_account_but_the_contacts_archive_still_keeps_it()
    {
        await using var server = await Server();
        await using var alice = await Online(server, "alice", "pc");
        await using var bob = await Online(server, "bob", "phone");
        await alice.IqAsync("<iq type='set'><prefs xmlns='urn:xmpp:mam:2' default='never'/></iq>");

        await alice.SendAsync("<message to='bob@localhost' type='chat' id='o1'><body>out</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "o1");
        await bob.SendAsync("<message to='alice@localhost' type='chat' id='i1'><body>in</body></message>");
        var incoming = await alice.ReceiveAsync(e => e.Attr("id") == "i1");

        Assert.That((await Query(alice)).Results, Is.Empty);
        Assert.That(incoming.Child("stanza-id", Ns.StanzaId), Is.Null, "an unarchived message has no archive id");
        Assert.That((await Query(bob)).Bodies, Is.EqualTo(new[] { "out", "in" }));
    }

    [Test]
    public async Task Default_roster_archives_only_roster_contacts_and_the_lists_override_it()
    {
        await using var server = await Server();
        await server.AddUserAsync("dave", "dave-pw");
        await using var alice = await Online(server, "alice", "pc");
        await using var bob = await Online(server, "bob", "phone");
        await using var carol = await Online(server, "carol", "tablet");
        await using var dave = await Online(server, "dave", "desk");
        await alice.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query></iq>");
        await alice.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>");
        await alice.IqAsync("<iq type='set'><prefs xmlns='urn:xmpp:mam:2' default='roster'>" +
            "<always><jid>dave@localhost</jid></always><never><jid>carol@localhost</jid></never></prefs></iq>");
        await server.AddUserAsync("eve", "eve-pw");
        await using var eve = await Online(server, "eve", "lair");

        foreach (var (c, name) in new[] { (bob, "bob"), (carol, "carol"), (dave, "dave"), (eve, "eve") })
        {
            await c.SendAsync($"<message to='alice@localhost' type='chat' id='{name}'><body>from {name}</body></message>");
            await alice.ReceiveAsync(e => e.Attr("id") == name);
        }

        Assert.That((await Query(alice)).Bodies, Is.EqualTo(new[] { "from bob", "from dave" }),
            "bob is in the roster, dave always, carol never (though in the roster), eve is a stranger");
    }

    [Test]
    public async Task Deleting_an_account_deletes_its_archive_and_preferences()
    {
        await using var server = await Server();
        await SeedAsync(server);
        await using (var alice = await Online(server, "alice", "pc"))
            await alice.IqAsync("<iq type='set'><prefs xmlns='urn:xmpp:mam:2' default='never'/></iq>");

        Assert.That(await server.Get<Xmpp.Server.Auth.AccountService>().DeleteAsync("alice"), Is.True);
        await server.Get<IStorage>().FlushAsync();

        Assert.That(await server.Get<IStorage>().Archive(MamModule.Collection).CountAsync("alice"), Is.Zero);
        Assert.That(await server.Get<IStorage>().KeyValue.GetAsync("alice", "mam-prefs"), Is.Null);
        await server.AddUserAsync("alice", "alice-pw");
        await using var again = await Online(server, "alice", "pc");
        Assert.That((await again.IqAsync("<iq type='get'><prefs xmlns='urn:xmpp:mam:2'/></iq>")).Child("prefs", Ns.Mam)!.Attr("default"),
            Is.EqualTo("always"), "a new account of the same name starts afresh");
    }

    // ---- durability and scale ----

    [Test]
    public async Task The_archive_and_preferences_survive_a_server_restart()
    {
        var root = Path.Combine(Path.GetTempPath(), "xmpp-mam-restart-" + Guid.NewGuid().ToString("N"));
        try
        {
            string? id;
            await using (var first = await Server(dataDir: root))
            {
                await first.AddUserAsync("alice", "alice-pw");
                await first.AddUserAsync("bob", "bob-pw");
                await using var alice = await Online(first, "alice", "pc");
                await using var bob = await Online(first, "bob", "phone");
                await bob.IqAsync("<iq type='set'><prefs xmlns='urn:xmpp:mam:2' default='roster'/></iq>");
                await bob.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='alice@localhost'/></query></iq>");
                await alice.SendAsync("<message to='bob@localhost' type='chat' id='keep'><body>remember me</body></message>");
                id = (await bob.ReceiveAsync(e => e.Attr("id") == "keep")).Child("stanza-id", Ns.StanzaId)?.Attr("id");
            }

            await using var second = await Server(dataDir: root);
            await using var bob2 = await Online(second, "bob", "phone");
            var page = await Query(bob2);
            var prefs = await bob2.IqAsync("<iq type='get'><prefs xmlns='urn:xmpp:mam:2'/></iq>");

            Assert.That(page.Ids, Is.EqualTo(new[] { id }));
            Assert.That(page.Bodies, Is.EqualTo(new[] { "remember me" }));
            Assert.That(prefs.Child("prefs", Ns.Mam)!.Attr("default"), Is.EqualTo("roster"));
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    [Test]
    public async Task A_ten_thousand_message_archive_pages_end_to_end_in_order_forward_and_backward()
    {
        const int Total = 10_000;
        await using var server = await Server();
        var archive = server.Get<IStorage>().Archive(MamModule.Collection);
        var seed = Stopwatch.StartNew();
        // Concurrent appends: the storage writer commits them in groups.
        await Task.WhenAll(Enumerable.Range(0, 50).Select(w => Task.Run(async () =>
        {
            for (int n = w; n < Total; n += 50)
                await archive.AppendAsync("alice", T0.AddSeconds(n), "bob@localhost",
                    Encoding.UTF8.GetBytes(Message("bob@localhost/x", "alice@localhost", n)), "id-" + n);
        })));
        seed.Stop();
        await using var alice = await Online(server, "alice", "pc");

        var forward = Stopwatch.StartNew();
        var seen = new List<string>();
        string? after = null;
        Page page;
        int pages = 0;
        do
        {
            page = await Query(alice, rsm: "<max>250</max>" + (after is null ? "" : $"<after>{after}</after>"));
            Assert.That(page.Error, Is.Null);
            seen.AddRange(page.Ids);
            after = page.Last;
            pages++;
        } while (!page.Complete);
        forward.Stop();

        var backward = Stopwatch.StartNew();
        var back = new List<string>();
        string before = "";
        do
        {
            page = await Query(alice, ["with=bob@localhost"], rsm: $"<max>250</max><before>{before}</before>");
            back.InsertRange(0, page.Ids);
            before = page.First ?? "";
        } while (!page.Complete);
        backward.Stop();

        // Appends from concurrent tasks interleave, so the archive order is the id order the store gave them.
        var expected = (await archive.QueryAsync(new ArchiveQuery("alice", Max: Total))).Records.Select(r => r.StanzaId!).ToList();
        Assert.That(seen, Has.Count.EqualTo(Total));
        Assert.That(seen, Is.EqualTo(expected));
        Assert.That(back, Is.EqualTo(expected));
        Assert.That(pages, Is.EqualTo(40));
        Assert.That(page.Count, Is.EqualTo(Total));
        TestContext.Out.WriteLine($"seeded {Total} through the store in {seed.ElapsedMilliseconds} ms ({Total / seed.Elapsed.TotalSeconds:F0} appends/s); " +
            $"paged forward in {forward.ElapsedMilliseconds} ms ({pages} pages of 250), backward with a with filter in {backward.ElapsedMilliseconds} ms");
        Assert.That(forward.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)));
    }

    [Test]
    public async Task A_burst_of_messages_is_delivered_and_archived_in_both_archives_in_order()
    {
        const int Count = 1000;
        // A thousand at once is past the account's message burst (docs/security.md): a measurement, not a person.
        await using var server = await Server(o => o["Xmpp:RateLimits:MessagesPerSecond"] = "0");
        await using var alice = await Online(server, "alice", "pc");
        await using var bob = await Online(server, "bob", "phone");

        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Count; i++)
            await alice.SendAsync($"<message to='bob@localhost' type='chat' id='b{i}'><body>{i}</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == $"b{Count - 1}", TimeSpan.FromSeconds(60));
        var delivered = clock.Elapsed;
        var bobs = await Query(bob, rsm: "<max>1</max><before/>");
        clock.Stop();

        Assert.That(bobs.Count, Is.EqualTo(Count));
        Assert.That(bobs.Bodies, Is.EqualTo(new[] { (Count - 1).ToString() }));
        Assert.That((await Query(alice, rsm: "<max>0</max>")).Count, Is.EqualTo(Count));
        TestContext.Out.WriteLine($"{Count} messages delivered in {delivered.TotalMilliseconds:F0} ms ({Count / delivered.TotalSeconds:F0}/s), " +
            $"all archived twice within {clock.ElapsedMilliseconds} ms");
    }
}
