using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// RFC 6121 §2 roster management and XEP-0237 roster versioning, over real sockets.
[TestFixture]
public sealed class RosterModuleTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    private static async Task<TestServer> Server(Action<Dictionary<string, string?>>? configure = null)
    {
        var s = await TestServer.StartAsync(configure: configure);
        await s.AddUserAsync("romeo", "romeo-pw");
        await s.AddUserAsync("juliet", "juliet-pw");
        return s;
    }

    /// Connects and fetches the roster, which makes the resource "interested" in pushes.
    private static async Task<(TestClient Client, Element Query)> Interested(TestServer s, string user, string resource)
    {
        var c = await TestClient.ConnectAsync(s, user, user + "-pw", resource);
        var result = await c.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(result.Attr("type"), Is.EqualTo("result"), result.ToString());
        return (c, result.Child("query", Ns.Roster)!);
    }

    private static bool IsPush(Element e, string jid) =>
        e.Name == "iq" && e.Attr("type") == "set" && e.Child("query", Ns.Roster)?.Child("item", Ns.Roster)?.Attr("jid") == jid;

    private static Element PushedItem(Element push) => push.Child("query", Ns.Roster)!.Child("item", Ns.Roster)!;

    private static string? ErrorCondition(Element reply) =>
        reply.Attr("type") == "error" ? reply.Child("error", Ns.Client)?.FirstElement?.Name : null;

    [Test]
    public async Task Stream_features_after_authentication_offer_roster_versioning_and_pre_approval()
    {
        await using var server = await Server();
        await using var romeo = await TestClient.ConnectAsync(server, "romeo", "romeo-pw", "orchard");
        Assert.That(romeo.Features!.Child("ver", Ns.RosterVer), Is.Not.Null);
        Assert.That(romeo.Features!.Child("sub", Ns.PreApproval), Is.Not.Null);
    }

    [Test]
    public async Task Roster_of_a_new_account_is_empty_and_carries_a_version()
    {
        await using var server = await Server();
        var (romeo, query) = await Interested(server, "romeo", "orchard");
        await using var _ = romeo;
        Assert.That(query.Elements().Any(), Is.False);
        Assert.That(query.Attr("ver"), Is.Not.Null);
    }

    [Test]
    public async Task Adding_updating_and_removing_an_item_is_pushed_to_every_interested_resource()
    {
        await using var server = await Server();
        var (phone, _) = await Interested(server, "romeo", "phone");
        var (laptop, _) = await Interested(server, "romeo", "laptop");
        await using var p = phone;
        await using var l = laptop;
        await using var bystander = await TestClient.ConnectAsync(server, "romeo", "romeo-pw", "bystander");

        // Romeo adds Juliet from his phone; both interested resources get the push, the result follows.
        var added = await phone.IqAsync(
            "<iq type='set'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' name='Juliet'><group>Capulets</group></item></query></iq>");
        Assert.That(added.Attr("type"), Is.EqualTo("result"));
        foreach (var c in new[] { phone, laptop })
        {
            var push = await c.ReceiveAsync(e => IsPush(e, "juliet@localhost"));
            Assert.That(X.Matches(push, "<iq type='set'><query xmlns='jabber:iq:roster' ver='*'><item jid='juliet@localhost' name='Juliet' subscription='none'><group>Capulets</group></item></query></iq>"), push.ToString());
            Assert.That(PushedItem(push).Attr("ask"), Is.Null);
            Assert.That(push.Attr("to"), Is.EqualTo(c.Jid!.ToString()));
        }
        // A resource that never asked for the roster is not interested (RFC 6121 §2.1.6).
        Assert.That(await bystander.TryReceiveAsync(e => IsPush(e, "juliet@localhost"), Quiet), Is.Null);

        // He renames her and moves her to two groups from the laptop.
        Assert.That((await laptop.IqAsync(
            "<iq type='set'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' name='Jules'><group>Verona</group><group>Love</group></item></query></iq>")).Attr("type"),
            Is.EqualTo("result"));
        var update = await phone.ReceiveAsync(e => IsPush(e, "juliet@localhost"));
        Assert.That(PushedItem(update).Attr("name"), Is.EqualTo("Jules"));
        Assert.That(PushedItem(update).Elements("group", Ns.Roster).Select(g => g.Text), Is.EquivalentTo(new[] { "Verona", "Love" }));
        await laptop.ReceiveAsync(e => IsPush(e, "juliet@localhost"));

        // The roster now lists her as updated.
        var roster = await phone.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        var items = roster.Child("query", Ns.Roster)!.Elements("item", Ns.Roster).ToList();
        Assert.That(items, Has.Count.EqualTo(1));
        Assert.That(items[0].Attr("name"), Is.EqualTo("Jules"));

        // He removes her; both resources see subscription='remove'.
        Assert.That((await phone.IqAsync(
            "<iq type='set'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' subscription='remove'/></query></iq>")).Attr("type"),
            Is.EqualTo("result"));
        foreach (var c in new[] { phone, laptop })
        {
            var push = await c.ReceiveAsync(e => IsPush(e, "juliet@localhost"));
            Assert.That(PushedItem(push).Attr("subscription"), Is.EqualTo("remove"));
        }
        var empty = await laptop.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(empty.Child("query", Ns.Roster)!.Elements().Any(), Is.False);
    }

    [Test]
    public async Task A_roster_read_after_a_change_always_shows_it_while_other_reads_run_alongside()
    {
        // The server keeps rosters it has read until they change (RosterService): reads racing with writes must never
        // leave it serving the roster from before a change. The reader sends roster gets as fast as it can, far past
        // the account's IQ rate (docs/security.md), so the rate is off here.
        await using var server = await Server(o => o["Xmpp:RateLimits:IqPerSecond"] = "0");
        var (phone, _) = await Interested(server, "romeo", "phone");
        var (laptop, _) = await Interested(server, "romeo", "laptop");
        await using var p = phone;
        await using var l = laptop;
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            var reads = 0;
            while (!stop.IsCancellationRequested)
            {
                await laptop.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
                reads++;
            }
            return reads;
        });

        for (var i = 0; i < 20; i++)
        {
            Assert.That((await phone.IqAsync(
                $"<iq type='set'><query xmlns='jabber:iq:roster'><item jid='c{i}@localhost'/></query></iq>")).Attr("type"), Is.EqualTo("result"));
            var roster = await phone.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
            var jids = roster.Child("query", Ns.Roster)!.Elements("item", Ns.Roster).Select(e => e.Attr("jid")).ToList();
            Assert.That(jids, Has.Count.EqualTo(i + 1), $"after adding c{i}");
            Assert.That(jids, Does.Contain($"c{i}@localhost"));
        }
        stop.Cancel();
        Assert.That(await reader, Is.GreaterThan(0));
    }

    [Test]
    public async Task Roster_get_with_the_current_version_is_answered_with_an_empty_result_and_changes_come_as_pushes()
    {
        await using var server = await Server();
        var (romeo, first) = await Interested(server, "romeo", "orchard");
        await using var _ = romeo;
        var ver = first.Attr("ver")!;

        // XEP-0237: the client's copy is current, so nothing is sent but an empty result.
        var same = await romeo.IqAsync($"<iq type='get'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>");
        Assert.That(same.Attr("type"), Is.EqualTo("result"));
        Assert.That(same.Elements().Any(), Is.False, same.ToString());

        await romeo.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='mercutio@localhost'/></query></iq>");
        var push = await romeo.ReceiveAsync(e => IsPush(e, "mercutio@localhost"));
        var newVer = push.Child("query", Ns.Roster)!.Attr("ver");
        Assert.That(newVer, Is.Not.Null.And.Not.EqualTo(ver), "each push carries the new version");

        // With the old version the whole roster comes back, stamped with the version the push announced.
        var stale = await romeo.IqAsync($"<iq type='get'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>");
        var query = stale.Child("query", Ns.Roster)!;
        Assert.That(query.Attr("ver"), Is.EqualTo(newVer));
        Assert.That(query.Elements("item", Ns.Roster).Select(i => i.Attr("jid")), Is.EqualTo(new[] { "mercutio@localhost" }));

        var current = await romeo.IqAsync($"<iq type='get'><query xmlns='jabber:iq:roster' ver='{newVer}'/></iq>");
        Assert.That(current.Elements().Any(), Is.False);
    }

    [TestCase("<item jid='a@localhost'/><item jid='b@localhost'/>", "bad-request", TestName = "Roster_set_with_two_items_is_a_bad_request")]
    [TestCase("", "bad-request", TestName = "Roster_set_without_an_item_is_a_bad_request")]
    [TestCase("<item name='no jid'/>", "bad-request", TestName = "Roster_set_without_a_jid_is_a_bad_request")]
    [TestCase("<item jid='@localhost'/>", "jid-malformed", TestName = "Roster_set_with_a_malformed_jid_is_rejected")]
    [TestCase("<item jid='a@localhost'><group>Friends</group><group>Friends</group></item>", "bad-request", TestName = "Roster_set_with_a_duplicate_group_is_a_bad_request")]
    [TestCase("<item jid='a@localhost'><group></group></item>", "not-acceptable", TestName = "Roster_set_with_an_empty_group_name_is_not_acceptable")]
    [TestCase("<item jid='a@localhost' subscription='sometimes'/>", "bad-request", TestName = "Roster_set_with_an_unknown_subscription_value_is_a_bad_request")]
    [TestCase("<item jid='nobody@localhost' subscription='remove'/>", "item-not-found", TestName = "Removing_an_item_that_is_not_in_the_roster_is_item_not_found")]
    public async Task Roster_set_errors(string items, string condition)
    {
        await using var server = await Server();
        var (romeo, _) = await Interested(server, "romeo", "orchard");
        await using var _r = romeo;
        var reply = await romeo.IqAsync($"<iq type='set'><query xmlns='jabber:iq:roster'>{items}</query></iq>");
        Assert.That(ErrorCondition(reply), Is.EqualTo(condition), reply.ToString());
        Assert.That(await romeo.TryReceiveAsync(e => e.Name == "iq" && e.Attr("type") == "set", Quiet), Is.Null, "a rejected set pushes nothing");
    }

    [TestCase("name", TestName = "Roster_set_with_an_overlong_name_is_not_acceptable")]
    [TestCase("group", TestName = "Roster_set_with_an_overlong_group_is_not_acceptable")]
    public async Task Overlong_texts_are_not_acceptable(string where)
    {
        await using var server = await Server();
        var (romeo, _) = await Interested(server, "romeo", "orchard");
        await using var _r = romeo;
        var longText = new string('x', 1025);
        var item = where == "name"
            ? $"<item jid='a@localhost' name='{longText}'/>"
            : $"<item jid='a@localhost'><group>{longText}</group></item>";
        var reply = await romeo.IqAsync($"<iq type='set'><query xmlns='jabber:iq:roster'>{item}</query></iq>");
        Assert.That(ErrorCondition(reply), Is.EqualTo("not-acceptable"));
    }

    [Test]
    public async Task A_subscription_value_in_a_roster_set_is_ignored()
    {
        await using var server = await Server();
        var (romeo, _) = await Interested(server, "romeo", "orchard");
        await using var _r = romeo;
        await romeo.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' subscription='both'/></query></iq>");
        var push = await romeo.ReceiveAsync(e => IsPush(e, "juliet@localhost"));
        Assert.That(PushedItem(push).Attr("subscription"), Is.EqualTo("none"), "subscription state changes only through presence");
    }

    [Test]
    public async Task An_item_for_the_accounts_own_bare_jid_is_allowed()
    {
        await using var server = await Server();
        var (romeo, _) = await Interested(server, "romeo", "orchard");
        await using var _r = romeo;
        var reply = await romeo.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='romeo@localhost' name='Me'/></query></iq>");
        Assert.That(reply.Attr("type"), Is.EqualTo("result"));
        await romeo.ReceiveAsync(e => IsPush(e, "romeo@localhost"));
    }

    [Test]
    public async Task Another_accounts_roster_is_forbidden()
    {
        await using var server = await Server();
        var (romeo, _) = await Interested(server, "romeo", "orchard");
        await using var _r = romeo;
        var get = await romeo.IqAsync("<iq type='get' to='juliet@localhost'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(ErrorCondition(get), Is.EqualTo("forbidden"));
        var set = await romeo.IqAsync("<iq type='set' to='juliet@localhost'><query xmlns='jabber:iq:roster'><item jid='tybalt@localhost'/></query></iq>");
        Assert.That(ErrorCondition(set), Is.EqualTo("forbidden"));
    }

    [Test]
    public async Task A_roster_get_addressed_to_the_own_bare_jid_is_answered()
    {
        await using var server = await Server();
        var (romeo, _) = await Interested(server, "romeo", "orchard");
        await using var _r = romeo;
        var get = await romeo.IqAsync("<iq type='get' to='romeo@localhost'><query xmlns='jabber:iq:roster'/></iq>");
        Assert.That(get.Attr("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Deleting_an_account_deletes_its_roster()
    {
        await using var server = await Server();
        var (romeo, _) = await Interested(server, "romeo", "orchard");
        await romeo.IqAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost'/></query></iq>");
        await romeo.ReceiveAsync(e => IsPush(e, "juliet@localhost"));
        await romeo.CloseAsync();
        await romeo.DisposeAsync();
        Assert.That((await server.Get<IStorage>().Rosters.GetAsync("romeo")).Items, Is.Not.Empty);

        Assert.That(await server.Get<AccountService>().DeleteAsync("romeo"), Is.True);
        Assert.That((await server.Get<IStorage>().Rosters.GetAsync("romeo")).Items, Is.Empty);
    }
}
