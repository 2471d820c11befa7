using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// RFC 6121 §3 subscriptions and §4 presence, played by Romeo, Juliet and friends over real sockets.
[TestFixture]
public sealed class PresenceModuleTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    private static async Task<TestServer> Server()
    {
        var s = await TestServer.StartAsync();
        foreach (var user in new[] { "romeo", "juliet", "benvolio", "nurse" })
            await s.AddUserAsync(user, user + "-pw");
        return s;
    }

    /// Connects, fetches the roster (so pushes arrive) and sends initial presence, waiting for its own echo.
    private static async Task<TestClient> Online(TestServer s, string user, string resource, string? status = null)
    {
        var c = await TestClient.ConnectAsync(s, user, user + "-pw", resource);
        await c.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        await c.SendAsync(status is null ? "<presence/>" : $"<presence><status>{status}</status></presence>");
        await c.ReceiveAsync(e => IsPresence(e, c.Jid!.ToString(), null));
        return c;
    }

    /// Both rosters hold each other with the given subscriptions, as if an earlier session had set them up.
    private static async Task Seed(TestServer s, string user, string contact, Subscription subscription) =>
        await s.Get<IStorage>().Rosters.SetItemAsync(user,
            new RosterItem(contact, null, Array.Empty<string>(), subscription, AskOut: false, PendingIn: false, PreApproved: false, InRoster: true));

    private static async Task Lovers(TestServer s)
    {
        await Seed(s, "romeo", "juliet@localhost", Subscription.Both);
        await Seed(s, "juliet", "romeo@localhost", Subscription.Both);
    }

    private static bool IsPresence(Element e, string from, string? type) =>
        e.Name == "presence" && e.Attr("from") == from && e.Attr("type") == type;

    private static Func<Element, bool> Presence(string from, string? type = null) => e => IsPresence(e, from, type);

    private static Func<Element, bool> Push(string jid) => e =>
        e.Name == "iq" && e.Attr("type") == "set" && e.Child("query", Ns.Roster)?.Child("item", Ns.Roster)?.Attr("jid") == jid;

    private static Element Item(Element push) => push.Child("query", Ns.Roster)!.Child("item", Ns.Roster)!;

    private static void AssertItem(Element push, string subscription, string? ask = null, string? approved = null)
    {
        var item = Item(push);
        Assert.That(item.Attr("subscription"), Is.EqualTo(subscription), push.ToString());
        Assert.That(item.Attr("ask"), Is.EqualTo(ask), push.ToString());
        Assert.That(item.Attr("approved"), Is.EqualTo(approved), push.ToString());
    }

    private static async Task<List<string?>> RosterJids(TestClient c)
    {
        var result = await c.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        return result.Child("query", Ns.Roster)!.Elements("item", Ns.Roster).Select(i => i.Attr("jid")).ToList();
    }

    [Test]
    public async Task Romeo_and_Juliet_subscribe_to_each_other_until_both_see_each_others_presence()
    {
        await using var server = await Server();
        await using var romeo = await Online(server, "romeo", "orchard");
        await using var juliet = await Online(server, "juliet", "balcony", "On the balcony");

        // Romeo asks to see Juliet's presence; his roster shows the pending request.
        await romeo.SendAsync("<presence to='juliet@localhost' type='subscribe'><status>It is I, Romeo</status></presence>");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "none", ask: "subscribe");

        // Juliet receives the request from his bare JID, with his words.
        var request = await juliet.ReceiveAsync(Presence("romeo@localhost", "subscribe"));
        Assert.That(request.ChildText("status", Ns.Client), Is.EqualTo("It is I, Romeo"));

        // Juliet approves: she gets Romeo as a subscriber, he gets 'to', the approval and her presence.
        await juliet.SendAsync("<presence to='romeo@localhost' type='subscribed'/>");
        AssertItem(await juliet.ReceiveAsync(Push("romeo@localhost")), "from");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "to");
        await romeo.ReceiveAsync(Presence("juliet@localhost", "subscribed"));
        var hers = await romeo.ReceiveAsync(Presence("juliet@localhost/balcony"));
        Assert.That(hers.ChildText("status", Ns.Client), Is.EqualTo("On the balcony"));

        // Juliet asks back; Romeo approves; both end with 'both'.
        await juliet.SendAsync("<presence to='romeo@localhost' type='subscribe'/>");
        AssertItem(await juliet.ReceiveAsync(Push("romeo@localhost")), "from", ask: "subscribe");
        await romeo.ReceiveAsync(Presence("juliet@localhost", "subscribe"));
        await romeo.SendAsync("<presence to='juliet@localhost' type='subscribed'/>");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "both");
        AssertItem(await juliet.ReceiveAsync(Push("romeo@localhost")), "both");
        await juliet.ReceiveAsync(Presence("romeo@localhost", "subscribed"));
        await juliet.ReceiveAsync(Presence("romeo@localhost/orchard"));

        // From now on presence flows both ways.
        await romeo.SendAsync("<presence><show>away</show><status>Under her window</status></presence>");
        var away = await juliet.ReceiveAsync(Presence("romeo@localhost/orchard"));
        Assert.That(away.ChildText("show", Ns.Client), Is.EqualTo("away"));
        await juliet.SendAsync("<presence><show>chat</show></presence>");
        Assert.That((await romeo.ReceiveAsync(Presence("juliet@localhost/balcony"))).ChildText("show", Ns.Client), Is.EqualTo("chat"));
    }

    [Test]
    public async Task A_request_to_an_offline_contact_waits_for_her_and_stays_out_of_her_roster_until_approved()
    {
        await using var server = await Server();
        await using var romeo = await Online(server, "romeo", "orchard");
        await romeo.SendAsync("<presence to='juliet@localhost' type='subscribe'><status>Wherefore art thou?</status></presence>");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "none", ask: "subscribe");

        // Juliet logs in: her roster does not list Romeo, but her initial presence brings his request.
        await using var juliet = await TestClient.ConnectAsync(server, "juliet", "juliet-pw", "balcony");
        Assert.That(await RosterJids(juliet), Is.Empty);
        await juliet.SendAsync("<presence/>");
        var request = await juliet.ReceiveAsync(Presence("romeo@localhost", "subscribe"));
        Assert.That(request.ChildText("status", Ns.Client), Is.EqualTo("Wherefore art thou?"));

        // Until she answers, each resource that comes online is asked again.
        await using var phone = await TestClient.ConnectAsync(server, "juliet", "juliet-pw", "phone");
        await phone.SendAsync("<presence/>");
        await phone.ReceiveAsync(Presence("romeo@localhost", "subscribe"));

        await juliet.SendAsync("<presence to='romeo@localhost' type='subscribed'/>");
        AssertItem(await juliet.ReceiveAsync(Push("romeo@localhost")), "from");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "to");
        await romeo.ReceiveAsync(Presence("juliet@localhost", "subscribed"));
        await romeo.ReceiveAsync(Presence("juliet@localhost/balcony"));
        await romeo.ReceiveAsync(Presence("juliet@localhost/phone"));
        Assert.That(await RosterJids(juliet), Is.EqualTo(new[] { "romeo@localhost" }));

        // Answered requests are not delivered again.
        await using var tablet = await TestClient.ConnectAsync(server, "juliet", "juliet-pw", "tablet");
        await tablet.SendAsync("<presence/>");
        Assert.That(await tablet.TryReceiveAsync(e => e.Attr("type") == "subscribe", Quiet), Is.Null);
    }

    [Test]
    public async Task A_pre_approved_request_is_approved_without_asking_Juliet()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet", "balcony");

        // Juliet pre-approves Romeo (RFC 6121 §3.4): her roster shows approved='true' and nothing is sent to him.
        await juliet.SendAsync("<presence to='romeo@localhost' type='subscribed'/>");
        AssertItem(await juliet.ReceiveAsync(Push("romeo@localhost")), "none", approved: "true");
        await using var romeo = await Online(server, "romeo", "orchard");
        Assert.That(await romeo.TryReceiveAsync(Presence("juliet@localhost", "subscribed"), Quiet), Is.Null);

        // Romeo asks and is approved at once; Juliet is not bothered with the request.
        await romeo.SendAsync("<presence to='juliet@localhost' type='subscribe'/>");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "none", ask: "subscribe");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "to");
        await romeo.ReceiveAsync(Presence("juliet@localhost", "subscribed"));
        await romeo.ReceiveAsync(Presence("juliet@localhost/balcony"));
        AssertItem(await juliet.ReceiveAsync(Push("romeo@localhost")), "from");
        Assert.That(await juliet.TryReceiveAsync(Presence("romeo@localhost", "subscribe"), Quiet), Is.Null);
    }

    [Test]
    public async Task Juliet_can_withdraw_a_pre_approval_without_telling_Romeo()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet", "balcony");
        await using var romeo = await Online(server, "romeo", "orchard");
        await juliet.SendAsync("<presence to='romeo@localhost' type='subscribed'/>");
        AssertItem(await juliet.ReceiveAsync(Push("romeo@localhost")), "none", approved: "true");
        await juliet.SendAsync("<presence to='romeo@localhost' type='unsubscribed'/>");
        AssertItem(await juliet.ReceiveAsync(Push("romeo@localhost")), "none");
        Assert.That(await romeo.TryReceiveAsync(e => e.Name == "presence" && e.Attr("from") == "juliet@localhost", Quiet), Is.Null);

        // Without the pre-approval, his request reaches her again.
        await romeo.SendAsync("<presence to='juliet@localhost' type='subscribe'/>");
        await juliet.ReceiveAsync(Presence("romeo@localhost", "subscribe"));
    }

    [Test]
    public async Task Juliet_denies_a_request_and_Romeo_is_told()
    {
        await using var server = await Server();
        await using var romeo = await Online(server, "romeo", "orchard");
        await using var juliet = await Online(server, "juliet", "balcony");
        await romeo.SendAsync("<presence to='juliet@localhost' type='subscribe'/>");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "none", ask: "subscribe");
        await juliet.ReceiveAsync(Presence("romeo@localhost", "subscribe"));

        await juliet.SendAsync("<presence to='romeo@localhost' type='unsubscribed'/>");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "none");
        await romeo.ReceiveAsync(Presence("juliet@localhost", "unsubscribed"));
        Assert.That(await RosterJids(juliet), Is.Empty, "the forgotten request leaves nothing in her roster");
        Assert.That(await juliet.TryReceiveAsync(Push("romeo@localhost"), Quiet), Is.Null);
    }

    [Test]
    public async Task An_approval_Juliet_never_asked_for_is_ignored()
    {
        await using var server = await Server();
        // Rosters out of step: Romeo remembers a request from Juliet that her side no longer asks for.
        await server.Get<IStorage>().Rosters.SetItemAsync("romeo", new RosterItem("juliet@localhost", null, Array.Empty<string>(),
            Subscription.None, AskOut: false, PendingIn: true, PreApproved: false, InRoster: true));
        await Seed(server, "juliet", "romeo@localhost", Subscription.None);
        await using var romeo = await Online(server, "romeo", "orchard");
        await using var juliet = await Online(server, "juliet", "balcony");

        await romeo.SendAsync("<presence to='juliet@localhost' type='subscribed'/>");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "from");
        // RFC 6121 Appendix A.3.2: at her side the approval is dropped; her roster does not change.
        Assert.That(await juliet.TryReceiveAsync(e => e.Attr("type") == "subscribed", Quiet), Is.Null);
        Assert.That(await juliet.TryReceiveAsync(Push("romeo@localhost"), TimeSpan.FromMilliseconds(100)), Is.Null);
        Assert.That((await server.Get<IStorage>().Rosters.GetItemAsync("juliet", "romeo@localhost"))!.Subscription, Is.EqualTo(Subscription.None));
    }

    [Test]
    public async Task Unsubscribe_and_unsubscribed_take_both_subscriptions_down_step_by_step()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var romeo = await Online(server, "romeo", "orchard");
        await using var juliet = await Online(server, "juliet", "balcony");
        await romeo.ReceiveAsync(Presence("juliet@localhost/balcony"));

        // Romeo no longer wants Juliet's presence: he is left with 'from', she with 'to', and she looks offline to him.
        await romeo.SendAsync("<presence to='juliet@localhost' type='unsubscribe'/>");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "from");
        AssertItem(await juliet.ReceiveAsync(Push("romeo@localhost")), "to");
        await juliet.ReceiveAsync(Presence("romeo@localhost", "unsubscribe"));
        await romeo.ReceiveAsync(Presence("juliet@localhost/balcony", "unavailable"));

        // Romeo also revokes her subscription to him: she sees him go offline, then the cancellation.
        await romeo.SendAsync("<presence to='juliet@localhost' type='unsubscribed'/>");
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "none");
        await juliet.ReceiveAsync(Presence("romeo@localhost/orchard", "unavailable"));
        await juliet.ReceiveAsync(Presence("romeo@localhost", "unsubscribed"));
        AssertItem(await juliet.ReceiveAsync(Push("romeo@localhost")), "none");

        // Nothing flows any more.
        await romeo.SendAsync("<presence><show>xa</show></presence>");
        Assert.That(await juliet.TryReceiveAsync(
            e => IsPresence(e, "romeo@localhost/orchard", null) && e.ChildText("show", Ns.Client) == "xa", Quiet), Is.Null);
    }

    [Test]
    public async Task Removing_a_contact_cancels_the_subscriptions_both_ways()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var romeo = await Online(server, "romeo", "orchard");
        await using var juliet = await Online(server, "juliet", "balcony");
        await romeo.ReceiveAsync(Presence("juliet@localhost/balcony"));

        var result = await romeo.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' subscription='remove'/></query></iq>");
        Assert.That(result.Attr("type"), Is.EqualTo("result"));
        AssertItem(await romeo.ReceiveAsync(Push("juliet@localhost")), "remove");

        // RFC 6121 §2.5.2: Juliet loses him as subscriber and as contact.
        await juliet.ReceiveAsync(Presence("romeo@localhost/orchard", "unavailable"));
        await juliet.ReceiveAsync(Presence("romeo@localhost", "unsubscribed"));
        await juliet.ReceiveAsync(Presence("romeo@localhost", "unsubscribe"));
        await Wait.UntilAsync(async () =>
            (await server.Get<IStorage>().Rosters.GetItemAsync("juliet", "romeo@localhost"))?.Subscription == Subscription.None);
        Assert.That((await server.Get<IStorage>().Rosters.GetItemAsync("juliet", "romeo@localhost"))!.Subscription, Is.EqualTo(Subscription.None));
        await romeo.ReceiveAsync(Presence("juliet@localhost/balcony", "unavailable"));
        Assert.That(await RosterJids(romeo), Is.Empty);
    }

    [Test]
    public async Task Romeo_logging_in_receives_Juliets_presence_and_she_receives_his()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var juliet = await Online(server, "juliet", "balcony", "Parting is such sweet sorrow");
        await using var nurse = await Online(server, "nurse", "kitchen");

        await using var romeo = await Online(server, "romeo", "orchard", "Soft, what light");
        var hers = await romeo.ReceiveAsync(Presence("juliet@localhost/balcony"));
        Assert.That(hers.ChildText("status", Ns.Client), Is.EqualTo("Parting is such sweet sorrow"));
        Assert.That(hers.Attr("to"), Is.EqualTo("romeo@localhost/orchard"));
        var his = await juliet.ReceiveAsync(Presence("romeo@localhost/orchard"));
        Assert.That(his.ChildText("status", Ns.Client), Is.EqualTo("Soft, what light"));

        // The nurse is in nobody's roster and sees nothing.
        Assert.That(await nurse.TryReceiveAsync(e => e.Name == "presence" && e.Attr("from") != nurse.Jid!.ToString(), Quiet), Is.Null);
    }

    [Test]
    public async Task A_contact_that_is_offline_sends_nothing_at_login()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var romeo = await Online(server, "romeo", "orchard");
        Assert.That(await romeo.TryReceiveAsync(e => e.Name == "presence" && e.Attr("from")!.StartsWith("juliet@"), Quiet), Is.Null);
    }

    [Test]
    public async Task The_accounts_own_resources_see_each_other()
    {
        await using var server = await Server();
        await using var phone = await Online(server, "romeo", "phone", "on the road");
        await using var laptop = await Online(server, "romeo", "laptop");
        var phoneSeen = await laptop.ReceiveAsync(Presence("romeo@localhost/phone"));
        Assert.That(phoneSeen.ChildText("status", Ns.Client), Is.EqualTo("on the road"));
        await phone.ReceiveAsync(Presence("romeo@localhost/laptop"));

        await laptop.SendAsync("<presence type='unavailable'/>");
        await phone.ReceiveAsync(Presence("romeo@localhost/laptop", "unavailable"));
    }

    [Test]
    public async Task Priority_and_last_presence_are_kept_in_the_session_directory()
    {
        await using var server = await Server();
        await using var romeo = await TestClient.ConnectAsync(server, "romeo", "romeo-pw", "orchard");
        await romeo.SendAsync("<presence><priority>5</priority><show>dnd</show></presence>");
        await romeo.ReceiveAsync(Presence("romeo@localhost/orchard"));
        var entry = server.Get<ISessionDirectory>().Find(romeo.Jid!)!;
        Assert.That(entry.Available, Is.True);
        Assert.That(entry.Priority, Is.EqualTo(5));
        Assert.That(entry.Presence!.ChildText("show", Ns.Client), Is.EqualTo("dnd"));

        await romeo.SendAsync("<presence type='unavailable'/>");
        await romeo.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(server.Get<ISessionDirectory>().Find(romeo.Jid!)!.Available, Is.False);
    }

    [TestCase(true, TestName = "Subscribers_and_directed_presence_recipients_see_Romeo_go_when_his_connection_drops")]
    [TestCase(false, TestName = "Subscribers_and_directed_presence_recipients_see_Romeo_go_when_he_closes_his_stream")]
    public async Task Unavailable_on_disconnect(bool abrupt)
    {
        await using var server = await Server();
        await Lovers(server);
        await using var juliet = await Online(server, "juliet", "balcony");
        await using var benvolio = await Online(server, "benvolio", "street");
        var romeo = await Online(server, "romeo", "orchard", "Thus with a kiss I die");
        await juliet.ReceiveAsync(Presence("romeo@localhost/orchard"));

        // Romeo sends directed presence to Benvolio, who is not in his roster.
        await romeo.SendAsync("<presence to='benvolio@localhost/street'><show>chat</show></presence>");
        await benvolio.ReceiveAsync(Presence("romeo@localhost/orchard"));

        if (abrupt) romeo.Abort();
        else await romeo.CloseAsync();
        await romeo.DisposeAsync();

        var toJuliet = await juliet.ReceiveAsync(Presence("romeo@localhost/orchard", "unavailable"));
        Assert.That(toJuliet.ChildText("status", Ns.Client), Is.EqualTo("Thus with a kiss I die"));
        await benvolio.ReceiveAsync(Presence("romeo@localhost/orchard", "unavailable"));
        Assert.That(await Wait.UntilAsync(async () =>
            (await server.Get<IStorage>().Accounts.FindAsync("romeo"))?.LastStatus == "Thus with a kiss I die"), Is.True,
            "the logout and its status are recorded");
    }

    [Test]
    public async Task An_explicit_unavailable_is_broadcast_once_and_not_repeated_at_disconnect()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var juliet = await Online(server, "juliet", "balcony");
        var romeo = await Online(server, "romeo", "orchard");
        await juliet.ReceiveAsync(Presence("romeo@localhost/orchard"));

        await romeo.SendAsync("<presence type='unavailable'><status>Banished to Mantua</status></presence>");
        var gone = await juliet.ReceiveAsync(Presence("romeo@localhost/orchard", "unavailable"));
        Assert.That(gone.ChildText("status", Ns.Client), Is.EqualTo("Banished to Mantua"));
        await romeo.CloseAsync();
        await romeo.DisposeAsync();
        Assert.That(await juliet.TryReceiveAsync(Presence("romeo@localhost/orchard", "unavailable"), Quiet), Is.Null);
        Assert.That(await Wait.UntilAsync(async () =>
            (await server.Get<IStorage>().Accounts.FindAsync("romeo"))?.LastStatus == "Banished to Mantua"), Is.True);
    }

    [Test]
    public async Task Directed_unavailable_ends_the_directed_presence()
    {
        await using var server = await Server();
        await using var benvolio = await Online(server, "benvolio", "street");
        var romeo = await Online(server, "romeo", "orchard");
        await romeo.SendAsync("<presence to='benvolio@localhost'/>");
        await benvolio.ReceiveAsync(Presence("romeo@localhost/orchard"));
        await romeo.SendAsync("<presence to='benvolio@localhost' type='unavailable'/>");
        await benvolio.ReceiveAsync(Presence("romeo@localhost/orchard", "unavailable"));

        romeo.Abort();
        await romeo.DisposeAsync();
        Assert.That(await benvolio.TryReceiveAsync(Presence("romeo@localhost/orchard", "unavailable"), Quiet), Is.Null);
    }

    [Test]
    public async Task A_presence_error_is_delivered_to_the_addressee()
    {
        await using var server = await Server();
        await using var romeo = await Online(server, "romeo", "orchard");
        await using var benvolio = await Online(server, "benvolio", "street");
        await benvolio.SendAsync("<presence type='error' to='romeo@localhost/orchard'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
        var error = await romeo.ReceiveAsync(Presence("benvolio@localhost/street", "error"));
        Assert.That(error.Child("error", Ns.Client)?.FirstElement?.Name, Is.EqualTo("service-unavailable"));
    }

    [Test]
    public async Task A_presence_of_unknown_type_is_a_bad_request()
    {
        await using var server = await Server();
        await using var romeo = await Online(server, "romeo", "orchard");
        await using var juliet = await Online(server, "juliet", "balcony");
        await romeo.SendAsync("<presence type='dancing' to='juliet@localhost'/>");
        var error = await romeo.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "error");
        Assert.That(error.Child("error", Ns.Client)?.FirstElement?.Name, Is.EqualTo("bad-request"));
        Assert.That(await juliet.TryReceiveAsync(e => e.Attr("from")?.StartsWith("romeo@") == true, Quiet), Is.Null);
    }

    [Test]
    public async Task Subscribing_to_an_account_that_does_not_exist_is_answered_with_unsubscribed()
    {
        await using var server = await Server();
        await using var romeo = await Online(server, "romeo", "orchard");
        await romeo.SendAsync("<presence to='rosaline@localhost' type='subscribe'/>");
        AssertItem(await romeo.ReceiveAsync(Push("rosaline@localhost")), "none", ask: "subscribe");
        await romeo.ReceiveAsync(Presence("rosaline@localhost", "unsubscribed"));
        AssertItem(await romeo.ReceiveAsync(Push("rosaline@localhost")), "none");
    }

    [Test]
    public async Task A_clients_probe_is_answered_only_for_subscribed_contacts()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var juliet = await Online(server, "juliet", "balcony", "Good night");
        await using var romeo = await Online(server, "romeo", "orchard");
        await romeo.ReceiveAsync(Presence("juliet@localhost/balcony"));

        await romeo.SendAsync("<presence type='probe' to='juliet@localhost'/>");
        var again = await romeo.ReceiveAsync(Presence("juliet@localhost/balcony"));
        Assert.That(again.ChildText("status", Ns.Client), Is.EqualTo("Good night"));
        Assert.That(await juliet.TryReceiveAsync(e => e.Attr("type") == "probe", Quiet), Is.Null, "probes are the server's business");

        await using var nurse = await Online(server, "nurse", "kitchen");
        await nurse.SendAsync("<presence type='probe' to='juliet@localhost'/>");
        Assert.That(await nurse.TryReceiveAsync(Presence("juliet@localhost/balcony"), Quiet), Is.Null);
    }

    // ---- A session replaced by a login with the same resource (RFC 6120 §7.7.2.2) ----

    [Test]
    public async Task A_replaced_session_that_is_not_followed_by_presence_goes_unavailable_for_contacts_and_directed_recipients()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var juliet = await Online(server, "juliet", "balcony");
        await using var nurse = await Online(server, "nurse", "kitchen");
        await using var old = await Online(server, "romeo", "pc", status: "here");
        await juliet.ReceiveAsync(Presence("romeo@localhost/pc"));
        await old.SendAsync("<presence to='nurse@localhost/kitchen'><status>psst</status></presence>");
        await nurse.ReceiveAsync(Presence("romeo@localhost/pc"));

        await using var replacement = await TestClient.ConnectAsync(server, "romeo", "romeo-pw", "pc");
        var error = await old.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child("conflict", Ns.StreamErrors), Is.Not.Null, error.ToString());

        var gone = await juliet.ReceiveAsync(Presence("romeo@localhost/pc", "unavailable"));
        Assert.That(gone.ChildText("status", Ns.Client), Is.EqualTo("here"), "the last status goes with it");
        await nurse.ReceiveAsync(Presence("romeo@localhost/pc", "unavailable"));
    }

    [Test]
    public async Task The_old_sessions_unavailable_reaches_contacts_before_the_replacements_presence_never_after()
    {
        await using var server = await Server();
        await Lovers(server);
        await using var juliet = await Online(server, "juliet", "balcony");
        await using var old = await Online(server, "romeo", "pc", status: "old");
        await juliet.ReceiveAsync(Presence("romeo@localhost/pc"));
        await juliet.DrainAsync(TimeSpan.Zero);

        await using var replacement = await Online(server, "romeo", "pc", status: "new");
        var error = await old.ReceiveAsync(e => e.Is("error", Ns.Streams));
        Assert.That(error.Child("conflict", Ns.StreamErrors), Is.Not.Null, error.ToString());

        // Everything Juliet hears about romeo/pc, in the order it arrives, until the replacement has been heard.
        var heard = new List<Element>();
        for (int i = 0; i < 20 && !heard.Any(IsNew); i++)
            heard.AddRange((await juliet.DrainAsync(Quiet)).Where(e => e.Name == "presence" && e.Attr("from") == "romeo@localhost/pc"));
        heard.AddRange((await juliet.DrainAsync(Quiet)).Where(e => e.Name == "presence" && e.Attr("from") == "romeo@localhost/pc"));
        Assert.That(heard.Count(e => e.Attr("type") == "unavailable"), Is.EqualTo(1), string.Join(" | ", heard));
        Assert.That(IsNew(heard[^1]), Is.True, "the last word about romeo/pc is the replacement's: " + string.Join(" | ", heard));

        static bool IsNew(Element e) => e.Attr("type") is null && e.ChildText("status", Ns.Client) == "new";
    }
}
