using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Blocking;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0191 blocking: Juliet blocks Romeo and he can no longer reach her, nor she him, until she relents.
[TestFixture]
public sealed class BlockingModuleTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    private static async Task<TestServer> Server(string? dataDir = null)
    {
        var s = await TestServer.StartAsync(dataDir);
        foreach (var user in new[] { "juliet", "romeo", "nurse" })
            if (await s.Get<Xmpp.Server.Auth.AccountService>().FindAsync(user) is null)
                await s.AddUserAsync(user, user + "-pw");
        return s;
    }

    /// Connects, optionally retrieves the blocklist (so pushes arrive) and sends presence, waiting for its echo.
    private static async Task<TestClient> Online(TestServer s, string user, string resource = "pc", bool blocklist = true, string? status = null)
    {
        var c = await TestClient.ConnectAsync(s, user, user + "-pw", resource);
        if (blocklist) await c.IqAsync("<iq type='get'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
        await c.SendAsync(status is null ? "<presence/>" : $"<presence><status>{status}</status></presence>");
        await c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == c.Jid!.ToString());
        return c;
    }

    private static async Task Lovers(TestServer s)
    {
        await s.Get<IStorage>().Rosters.SetItemAsync("juliet", new RosterItem("romeo@localhost", null, [], Subscription.Both, false, false, false, true));
        await s.Get<IStorage>().Rosters.SetItemAsync("romeo", new RosterItem("juliet@localhost", null, [], Subscription.Both, false, false, false, true));
    }

    private static async Task<Element> Block(TestClient c, params string[] jids)
    {
        var reply = await c.IqAsync($"<iq type='set'><block xmlns='urn:xmpp:blocking'>{Items(jids)}</block></iq>");
        Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());
        return reply;
    }

    private static async Task Unblock(TestClient c, params string[] jids)
    {
        var reply = await c.IqAsync($"<iq type='set'><unblock xmlns='urn:xmpp:blocking'>{Items(jids)}</unblock></iq>");
        Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());
    }

    private static string Items(IEnumerable<string> jids) => string.Concat(jids.Select(j => $"<item jid='{j}'/>"));

    private static async Task<List<string?>> Blocklist(TestClient c)
    {
        var reply = await c.IqAsync("<iq type='get'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
        return reply.Child("blocklist", Ns.Blocking)!.Elements("item", Ns.Blocking).Select(i => i.Attr("jid")).ToList();
    }

    private static void AssertError(Element reply, string condition)
    {
        Assert.That(reply.Attr("type"), Is.EqualTo("error"), reply.ToString());
        Assert.That(reply.Child("error", Ns.Client)?.Child(condition, Ns.StanzaErrors), Is.Not.Null, reply.ToString());
    }

    private static Func<Element, bool> Id(string id) => e => e.Attr("id") == id;

    private static Func<Element, bool> PresenceFrom(string from, string? type = null) =>
        e => e.Name == "presence" && e.Attr("from") == from && e.Attr("type") == type;

    // ---- The list and its commands ----

    [Test]
    public async Task The_blocklist_starts_empty_and_lists_blocked_jids_in_order()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        Assert.That(await Blocklist(juliet), Is.Empty);
        await Block(juliet, "romeo@montague.lit", "tybalt@localhost");
        await Block(juliet, "Romeo@Montague.lit", "iago@shakespeare.lit"); // the same JID once normalized: kept once
        Assert.That(await Blocklist(juliet), Is.EqualTo(new[] { "romeo@montague.lit", "tybalt@localhost", "iago@shakespeare.lit" }));
        await Unblock(juliet, "tybalt@localhost", "never@blocked.lit");
        Assert.That(await Blocklist(juliet), Is.EqualTo(new[] { "romeo@montague.lit", "iago@shakespeare.lit" }));
        await Unblock(juliet);
        Assert.That(await Blocklist(juliet), Is.Empty);
    }

    [TestCase("<iq type='set'><block xmlns='urn:xmpp:blocking'/></iq>", "bad-request")]
    [TestCase("<iq type='set'><block xmlns='urn:xmpp:blocking'><item/></block></iq>", "bad-request")]
    [TestCase("<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='@nobody'/></block></iq>", "jid-malformed")]
    [TestCase("<iq type='set'><unblock xmlns='urn:xmpp:blocking'><item jid='a@b/'/></unblock></iq>", "jid-malformed")]
    [TestCase("<iq type='get'><block xmlns='urn:xmpp:blocking'><item jid='a@b'/></block></iq>", "bad-request")]
    [TestCase("<iq type='get'><unblock xmlns='urn:xmpp:blocking'/></iq>", "bad-request")]
    [TestCase("<iq type='set'><blocklist xmlns='urn:xmpp:blocking'/></iq>", "bad-request")]
    [TestCase("<iq type='get' to='romeo@localhost'><blocklist xmlns='urn:xmpp:blocking'/></iq>", "service-unavailable")]
    public async Task Malformed_commands_are_refused_and_change_nothing(string request, string condition)
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        AssertError(await juliet.IqAsync(request), condition);
        Assert.That(await Blocklist(juliet), Is.Empty);
    }

    [Test]
    public async Task Changes_are_pushed_to_every_resource_that_retrieved_the_blocklist()
    {
        await using var server = await Server();
        await using var chamber = await Online(server, "juliet", "chamber");
        await using var balcony = await Online(server, "juliet", "balcony");
        await using var garden = await Online(server, "juliet", "garden", blocklist: false);

        await Block(chamber, "romeo@localhost");
        foreach (var c in new[] { chamber, balcony })
        {
            var push = await c.ReceiveAsync(e => e.Name == "iq" && e.Child("block", Ns.Blocking) is not null);
            Assert.That(X.Matches(push, $"<iq type='set' from='juliet@localhost' to='{c.Jid}'><block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></block></iq>"), push.ToString());
            await c.SendAsync($"<iq type='result' id='{push.Attr("id")}' to='juliet@localhost'/>");
        }

        await Unblock(balcony, "romeo@localhost");
        foreach (var c in new[] { chamber, balcony })
        {
            var push = await c.ReceiveAsync(e => e.Name == "iq" && e.Child("unblock", Ns.Blocking) is not null);
            Assert.That(X.Matches(push, "<iq type='set'><unblock xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></unblock></iq>"), push.ToString());
        }

        await Block(chamber, "tybalt@localhost");
        await Unblock(chamber);
        foreach (var c in new[] { chamber, balcony })
        {
            var all = await c.ReceiveAsync(e => e.Name == "iq" && e.Child("unblock", Ns.Blocking) is { } u && u.IsEmpty);
            Assert.That(all.Attr("type"), Is.EqualTo("set"));
        }
        // A resource that never asked for the blocklist is not bothered with pushes.
        Assert.That(await garden.TryReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "set", Quiet), Is.Null);
    }

    [Test]
    public async Task A_blocklist_beyond_the_limit_is_refused()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        await Block(juliet, Enumerable.Range(0, BlockingModule.MaxItems).Select(i => $"u{i}@example.org").ToArray());
        var reply = await juliet.IqAsync("<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='one-more@example.org'/></block></iq>");
        AssertError(reply, "not-acceptable");
        Assert.That(await Blocklist(juliet), Has.Count.EqualTo(BlockingModule.MaxItems));
    }

    // ---- Stanzas from a blocked contact (XEP-0191 §3.3) ----

    [Test]
    public async Task Messages_from_a_blocked_contact_bounce_as_if_the_user_were_offline()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        await using var romeo = await Online(server, "romeo");
        await Block(juliet, "romeo@localhost");

        await romeo.SendAsync("<message to='juliet@localhost' type='chat' id='m1'><body>Wherefore?</body></message>");
        var error = await romeo.ReceiveAsync(Id("m1"));
        AssertError(error, "service-unavailable");
        Assert.That(error.Attr("from"), Is.EqualTo("juliet@localhost"));
        Assert.That(error.Child("error", Ns.Client)!.Child("blocked", Ns.BlockingErrors), Is.Null, "the blocked side is not told it is blocked");

        await romeo.SendAsync("<message to='juliet@localhost/pc' type='chat' id='m2'><body>To your resource</body></message>");
        AssertError(await romeo.ReceiveAsync(Id("m2")), "service-unavailable");
        Assert.That(await juliet.TryReceiveAsync(e => e.Name == "message", Quiet), Is.Null);

        // A message from someone else still arrives.
        await using var nurse = await Online(server, "nurse");
        await nurse.SendAsync("<message to='juliet@localhost' type='chat' id='n1'><body>Madam!</body></message>");
        Assert.That((await juliet.ReceiveAsync("message")).Attr("id"), Is.EqualTo("n1"));
    }

    [Test]
    public async Task Messages_from_a_blocked_contact_are_not_spooled_for_an_offline_user()
    {
        await using var server = await Server();
        await using (var juliet = await Online(server, "juliet"))
            await Block(juliet, "romeo@localhost");
        await using var romeo = await Online(server, "romeo");
        await romeo.SendAsync("<message to='juliet@localhost' type='chat' id='m1'><body>Wherefore?</body></message>");
        AssertError(await romeo.ReceiveAsync(Id("m1")), "service-unavailable");
        Assert.That(await server.Get<IStorage>().Archive("offline").CountAsync("juliet"), Is.EqualTo(0));
    }

    [Test]
    public async Task Iq_requests_from_a_blocked_contact_get_service_unavailable_and_responses_vanish()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var juliet = await Online(server, "juliet");
        await using var romeo = await Online(server, "romeo");
        await Block(juliet, "romeo@localhost");

        AssertError(await romeo.IqAsync("<iq type='get' to='juliet@localhost/pc'><ping xmlns='urn:xmpp:ping'/></iq>"), "service-unavailable");
        // IQs the server answers on Juliet's behalf are blocked too (XEP-0012 §8 names blocking for last activity).
        AssertError(await romeo.IqAsync("<iq type='get' to='juliet@localhost'><vCard xmlns='vcard-temp'/></iq>"), "service-unavailable");
        AssertError(await romeo.IqAsync("<iq type='get' to='juliet@localhost'><query xmlns='jabber:iq:last'/></iq>"), "service-unavailable");
        await romeo.SendAsync("<iq type='result' id='r1' to='juliet@localhost/pc'/>");
        await romeo.SendAsync("<iq type='error' id='r2' to='juliet@localhost/pc'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        // Her own blocklist push may still be buffered; nothing from Romeo may reach her.
        Assert.That(await juliet.TryReceiveAsync(e => e.Name == "iq" && e.Attr("from")!.StartsWith("romeo"), Quiet), Is.Null);
        Assert.That(await romeo.TryReceiveAsync(e => e.Attr("id") is "r1" or "r2", Quiet), Is.Null, "a response is dropped without an answer");
    }

    [Test]
    public async Task Presence_from_a_blocked_contact_vanishes_without_an_error()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        await using var romeo = await Online(server, "romeo");
        await Block(juliet, "romeo@localhost");

        await romeo.SendAsync("<presence to='juliet@localhost' type='subscribe'/>");
        await romeo.SendAsync("<presence to='juliet@localhost'><status>directed</status></presence>");
        await romeo.SendAsync("<presence to='juliet@localhost' type='probe'/>");
        Assert.That(await juliet.TryReceiveAsync(e => e.Name == "presence" && e.Attr("from")!.StartsWith("romeo"), Quiet), Is.Null);
        Assert.That(await romeo.TryReceiveAsync(e => e.Attr("type") == "error" || e.Attr("from")?.StartsWith("juliet") == true, Quiet), Is.Null);
        // The request was not remembered for Juliet's next login either.
        Assert.That(await server.Get<IStorage>().Rosters.GetItemAsync("juliet", "romeo@localhost"), Is.Null);
    }

    // ---- Stanzas to a blocked contact (§3.3) ----

    [TestCase("<message to='romeo@localhost' type='chat' id='x1'><body>Come back</body></message>")]
    [TestCase("<message to='romeo@localhost/pc' id='x1'><body>Come back</body></message>")]
    [TestCase("<iq type='get' to='romeo@localhost/pc' id='x1'><ping xmlns='urn:xmpp:ping'/></iq>")]
    [TestCase("<iq type='get' to='romeo@localhost' id='x1'><vCard xmlns='vcard-temp'/></iq>")]
    [TestCase("<presence to='romeo@localhost' id='x1'/>")]
    public async Task Stanzas_to_a_blocked_contact_are_refused_with_the_blocked_condition(string stanza)
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        await using var romeo = await Online(server, "romeo");
        await Block(juliet, "romeo@localhost");

        await juliet.SendAsync(stanza);
        var error = await juliet.ReceiveAsync(Id("x1"));
        Assert.That(X.Matches(error, "<any type='error'><error type='cancel'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><blocked xmlns='urn:xmpp:blocking:errors'/></error></any>".Replace("any", error.Name)), error.ToString());
        Assert.That(await romeo.TryReceiveAsync(e => e.Attr("id") == "x1", Quiet), Is.Null);
    }

    [TestCase("romeo@localhost", "romeo@localhost/pc", true)]
    [TestCase("romeo@localhost/pc", "romeo@localhost/pc", true)]
    [TestCase("romeo@localhost/phone", "romeo@localhost/pc", false)]
    [TestCase("localhost", "romeo@localhost/pc", true)]
    [TestCase("nurse@localhost", "romeo@localhost/pc", false)]
    public async Task A_blocked_item_matches_senders_by_the_xep_rules(string item, string sender, bool blocked)
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        await using var romeo = await Online(server, "romeo");
        await Block(juliet, item);
        await romeo.SendAsync("<message to='juliet@localhost' type='chat' id='m1'><body>hi</body></message>");
        if (blocked)
        {
            AssertError(await romeo.ReceiveAsync(Id("m1")), "service-unavailable");
        }
        else
        {
            Assert.That((await juliet.ReceiveAsync("message")).Attr("id"), Is.EqualTo("m1"));
        }
    }

    [TestCase("romeo@montague.lit", "romeo@montague.lit", true)]
    [TestCase("romeo@montague.lit", "romeo@montague.lit/orchard", true)]
    [TestCase("romeo@montague.lit", "benvolio@montague.lit", false)]
    [TestCase("romeo@montague.lit/orchard", "romeo@montague.lit/orchard", true)]
    [TestCase("romeo@montague.lit/orchard", "romeo@montague.lit/street", false)]
    [TestCase("romeo@montague.lit/orchard", "romeo@montague.lit", false)]
    [TestCase("montague.lit/bot", "montague.lit/bot", true)]
    [TestCase("montague.lit/bot", "romeo@montague.lit/bot", false)]
    [TestCase("montague.lit/bot", "montague.lit", false)]
    [TestCase("montague.lit", "montague.lit", true)]
    [TestCase("montague.lit", "montague.lit/bot", true)]
    [TestCase("montague.lit", "romeo@montague.lit/orchard", true)]
    [TestCase("montague.lit", "rooms.montague.lit", true)]
    [TestCase("montague.lit", "tybalt@chat.rooms.montague.lit/x", true)]
    [TestCase("montague.lit", "capulet.lit", false)]
    [TestCase("montague.lit", "romeo@notmontague.lit", false)]
    [TestCase("montague.lit", "montague.lit.evil.org", false)]
    public void Jid_matching_follows_xep_0191(string item, string jid, bool matches) =>
        Assert.That(BlockList.Of([item]).Matches(Jid.Parse(jid)), Is.EqualTo(matches));

    // ---- Presence on block and unblock (§3.3, §3.4) ----

    [Test]
    public async Task Blocking_a_subscribed_contact_makes_each_side_see_the_other_go_offline()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var romeo = await Online(server, "romeo");
        await using var juliet = await Online(server, "juliet");
        await using var balcony = await Online(server, "juliet", "balcony");

        await Block(juliet, "romeo@localhost");
        // §3.3: "the user's server MUST send unavailable presence information to the contact".
        await romeo.ReceiveAsync(PresenceFrom("juliet@localhost/pc", "unavailable"));
        await romeo.ReceiveAsync(PresenceFrom("juliet@localhost/balcony", "unavailable"));
        await juliet.ReceiveAsync(PresenceFrom("romeo@localhost/pc", "unavailable"));
        await balcony.ReceiveAsync(PresenceFrom("romeo@localhost/pc", "unavailable"));

        // From now on neither side's presence reaches the other.
        await juliet.DrainAsync(TimeSpan.Zero);
        await romeo.DrainAsync(TimeSpan.Zero);
        await juliet.SendAsync("<presence><show>dnd</show></presence>");
        await romeo.SendAsync("<presence><show>chat</show></presence>");
        Assert.That(await romeo.TryReceiveAsync(e => e.Name == "presence" && e.Attr("from")!.StartsWith("juliet"), Quiet), Is.Null);
        Assert.That(await juliet.TryReceiveAsync(PresenceFrom("romeo@localhost/pc"), Quiet), Is.Null);
        // Her own resources still see each other.
        await balcony.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "juliet@localhost/pc" && e.ChildText("show", Ns.Client) == "dnd");
    }

    [Test]
    public async Task Unblocking_sends_current_presence_both_ways()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var romeo = await Online(server, "romeo", status: "in the orchard");
        await using var juliet = await Online(server, "juliet", status: "on the balcony");
        await Block(juliet, "romeo@localhost");
        await romeo.ReceiveAsync(PresenceFrom("juliet@localhost/pc", "unavailable"));

        await Unblock(juliet, "romeo@localhost");
        // §3.4: "the user's server MUST send the user's current presence information to the contact".
        var hers = await romeo.ReceiveAsync(PresenceFrom("juliet@localhost/pc"));
        Assert.That(hers.ChildText("status", Ns.Client), Is.EqualTo("on the balcony"));
        var his = await juliet.ReceiveAsync(PresenceFrom("romeo@localhost/pc"));
        Assert.That(his.ChildText("status", Ns.Client), Is.EqualTo("in the orchard"));

        await romeo.SendAsync("<message to='juliet@localhost' type='chat' id='m1'><body>Again!</body></message>");
        Assert.That((await juliet.ReceiveAsync("message")).Attr("id"), Is.EqualTo("m1"));
    }

    [Test]
    public async Task Unblocking_everyone_restores_presence_of_each_contact()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var romeo = await Online(server, "romeo");
        await using var juliet = await Online(server, "juliet", status: "free");
        await Block(juliet, "romeo@localhost", "nurse@localhost");
        await romeo.ReceiveAsync(PresenceFrom("juliet@localhost/pc", "unavailable"));

        await Unblock(juliet);
        Assert.That((await romeo.ReceiveAsync(PresenceFrom("juliet@localhost/pc"))).ChildText("status", Ns.Client), Is.EqualTo("free"));
        Assert.That(await Blocklist(juliet), Is.Empty);
    }

    [Test]
    public async Task A_contact_still_blocked_by_a_domain_item_gets_no_presence_on_unblock()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var romeo = await Online(server, "romeo");
        await using var juliet = await Online(server, "juliet");
        await Block(juliet, "romeo@localhost", "localhost");
        await romeo.ReceiveAsync(PresenceFrom("juliet@localhost/pc", "unavailable"));
        await romeo.DrainAsync(TimeSpan.Zero);

        await Unblock(juliet, "romeo@localhost");
        Assert.That(await romeo.TryReceiveAsync(PresenceFrom("juliet@localhost/pc"), Quiet), Is.Null);
    }

    // ---- Durability and discovery ----

    [Test]
    public async Task The_blocklist_survives_a_restart_and_is_still_enforced()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-blocking-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var server = await Server(dir))
            {
                await using var juliet = await Online(server, "juliet");
                await Block(juliet, "romeo@localhost", "montague.lit");
            }
            await using (var server = await Server(dir))
            {
                await using var romeo = await Online(server, "romeo");
                await romeo.SendAsync("<message to='juliet@localhost' type='chat' id='m1'><body>Still?</body></message>");
                AssertError(await romeo.ReceiveAsync(Id("m1")), "service-unavailable");
                await using var juliet = await Online(server, "juliet");
                Assert.That(await Blocklist(juliet), Is.EqualTo(new[] { "romeo@localhost", "montague.lit" }));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task The_server_announces_blocking()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        var info = await juliet.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(X.Matches(info, "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:blocking'/></query></iq>"), info.ToString());
    }
}
