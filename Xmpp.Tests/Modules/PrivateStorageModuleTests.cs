using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Profiles;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0049 private XML storage: Hamlet keeps his bookmarks and preferences; Macbeth may not touch them.
[TestFixture]
public sealed class PrivateStorageModuleTests
{
    private const string Bookmarks = "<storage xmlns='storage:bookmarks'><conference jid='elsinore@conference.localhost' name='Elsinore'/></storage>";

    private static async Task<TestServer> Server(string? dataDir = null)
    {
        var s = await TestServer.StartAsync(dataDir);
        foreach (var user in new[] { "hamlet", "macbeth" })
            if (await s.Get<Xmpp.Server.Auth.AccountService>().FindAsync(user) is null)
                await s.AddUserAsync(user, user + "-pw");
        return s;
    }

    private static Task<TestClient> Connect(TestServer s, string user) => TestClient.ConnectAsync(s, user, user + "-pw", "pc");

    private static Task<Element> Set(TestClient c, string fragments, string to = "") =>
        c.IqAsync($"<iq type='set'{to}><query xmlns='jabber:iq:private'>{fragments}</query></iq>");

    private static Task<Element> Get(TestClient c, string fragment, string to = "") =>
        c.IqAsync($"<iq type='get'{to}><query xmlns='jabber:iq:private'>{fragment}</query></iq>");

    private static void AssertError(Element reply, string condition)
    {
        Assert.That(reply.Attr("type"), Is.EqualTo("error"), reply.ToString());
        Assert.That(reply.Child("error", Ns.Client)?.Child(condition, Ns.StanzaErrors), Is.Not.Null, reply.ToString());
    }

    [Test]
    public async Task A_stored_fragment_comes_back_and_a_missing_one_comes_back_empty()
    {
        await using var server = await Server();
        await using var hamlet = await Connect(server, "hamlet");
        var set = await Set(hamlet, Bookmarks);
        Assert.That(set.Attr("type"), Is.EqualTo("result"), set.ToString());

        var got = await Get(hamlet, "<storage xmlns='storage:bookmarks'/>");
        Assert.That(X.Matches(got, $"<iq type='result'><query xmlns='jabber:iq:private'>{Bookmarks}</query></iq>"), got.ToString());

        var none = await Get(hamlet, "<prefs xmlns='exodus:prefs'/>");
        Assert.That(X.Matches(none, "<iq type='result'><query xmlns='jabber:iq:private'><prefs xmlns='exodus:prefs'/></query></iq>"), none.ToString());
        Assert.That(none.Child("query", Ns.Private)!.FirstElement!.IsEmpty);
    }

    [Test]
    public async Task A_set_replaces_only_its_own_namespace()
    {
        await using var server = await Server();
        await using var hamlet = await Connect(server, "hamlet");
        await Set(hamlet, Bookmarks + "<prefs xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></prefs>");
        await Set(hamlet, "<prefs xmlns='exodus:prefs'><defaultnick>Prince</defaultnick></prefs>");

        var prefs = await Get(hamlet, "<prefs xmlns='exodus:prefs'/>");
        var stored = prefs.Child("query", Ns.Private)!.Elements().ToList();
        Assert.That(stored, Has.Count.EqualTo(1), prefs.ToString());
        Assert.That(stored[0].ChildText("defaultnick", "exodus:prefs"), Is.EqualTo("Prince"));
        var bookmarks = await Get(hamlet, "<storage xmlns='storage:bookmarks'/>");
        Assert.That(X.Matches(bookmarks, $"<iq><query xmlns='jabber:iq:private'>{Bookmarks}</query></iq>"), bookmarks.ToString());
    }

    [Test]
    public async Task Several_elements_of_one_namespace_are_kept_together()
    {
        await using var server = await Server();
        await using var hamlet = await Connect(server, "hamlet");
        // XEP-0049 §2.3: "an IQ set or result MAY contain multiple elements qualified by the same namespace".
        await Set(hamlet, "<note xmlns='storage:rosternotes' jid='a@localhost'/><note xmlns='storage:rosternotes' jid='b@localhost'/>");
        var got = await Get(hamlet, "<note xmlns='storage:rosternotes'/>");
        Assert.That(got.Child("query", Ns.Private)!.Elements().Select(e => e.Attr("jid")), Is.EqualTo(new[] { "a@localhost", "b@localhost" }));
    }

    [TestCase("<vCard xmlns='vcard-temp'><FN>Hamlet</FN></vCard>")]
    [TestCase("<query xmlns='jabber:iq:roster'/>")]
    [TestCase("<x xmlns='http://jabber.org/protocol/muc'/>")]
    [TestCase("<unqualified/>")]
    public async Task Reserved_namespaces_are_not_acceptable(string fragment)
    {
        await using var server = await Server();
        await using var hamlet = await Connect(server, "hamlet");
        AssertError(await Set(hamlet, fragment), "not-acceptable");
        AssertError(await Get(hamlet, fragment), "not-acceptable");
    }

    [Test]
    public async Task Malformed_requests_are_refused()
    {
        await using var server = await Server();
        await using var hamlet = await Connect(server, "hamlet");
        // §2.3: a get without a child is "Bad Format"; a get names one namespace only; a set stores something.
        AssertError(await Get(hamlet, ""), "bad-request");
        AssertError(await Get(hamlet, "<a xmlns='urn:a'/><b xmlns='urn:b'/>"), "bad-request");
        AssertError(await Set(hamlet, ""), "not-acceptable");
    }

    [TestCase("get")]
    [TestCase("set")]
    public async Task Another_users_private_data_is_forbidden(string type)
    {
        await using var server = await Server();
        await using var hamlet = await Connect(server, "hamlet");
        await using var macbeth = await Connect(server, "macbeth");
        await Set(hamlet, "<prefs xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></prefs>");

        var reply = await macbeth.IqAsync($"<iq type='{type}' to='hamlet@localhost'><query xmlns='jabber:iq:private'><prefs xmlns='exodus:prefs'><defaultnick>Macbeth</defaultnick></prefs></query></iq>");
        AssertError(reply, "forbidden");
        var mine = await Get(hamlet, "<prefs xmlns='exodus:prefs'/>");
        Assert.That(mine.Child("query", Ns.Private)!.FirstElement!.ChildText("defaultnick", "exodus:prefs"), Is.EqualTo("Hamlet"));
    }

    [Test]
    public async Task Storage_beyond_the_account_limit_is_refused_and_the_old_data_kept()
    {
        await using var server = await Server();
        await using var hamlet = await Connect(server, "hamlet");
        var half = new string('x', PrivateStorageModule.MaxBytes / 2 + 100);
        Assert.That((await Set(hamlet, $"<a xmlns='urn:a'>{half}</a>")).Attr("type"), Is.EqualTo("result"));

        // The limit covers the account as a whole: a second half-sized namespace does not fit.
        var reply = await Set(hamlet, $"<b xmlns='urn:b'>{half}</b>");
        AssertError(reply, "not-acceptable");
        Assert.That(reply.Child("error", Ns.Client)!.ChildText("text", Ns.StanzaErrors), Does.Contain("KiB"));
        Assert.That((await Get(hamlet, "<b xmlns='urn:b'/>")).Child("query", Ns.Private)!.FirstElement!.IsEmpty);
        Assert.That((await Get(hamlet, "<a xmlns='urn:a'/>")).Child("query", Ns.Private)!.FirstElement!.Text, Has.Length.EqualTo(half.Length));

        // Replacing the same namespace stays within the limit.
        Assert.That((await Set(hamlet, $"<a xmlns='urn:a'>{half}</a>")).Attr("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task Private_data_survives_a_restart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-private-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var server = await Server(dir))
            {
                await using var hamlet = await Connect(server, "hamlet");
                Assert.That((await Set(hamlet, Bookmarks)).Attr("type"), Is.EqualTo("result"));
            }
            await using (var server = await Server(dir))
            {
                await using var hamlet = await Connect(server, "hamlet");
                var got = await Get(hamlet, "<storage xmlns='storage:bookmarks'/>", " to='hamlet@localhost'");
                Assert.That(X.Matches(got, $"<iq type='result'><query xmlns='jabber:iq:private'>{Bookmarks}</query></iq>"), got.ToString());
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task The_server_announces_private_storage()
    {
        await using var server = await Server();
        await using var hamlet = await Connect(server, "hamlet");
        var info = await hamlet.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(X.Matches(info, "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='jabber:iq:private'/></query></iq>"), info.ToString());
    }
}
