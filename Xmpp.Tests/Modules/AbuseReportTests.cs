using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Server.Modules.Blocking;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0377: Juliet blocks a spammer and reports him with the offending message; the admin reads the report.
[TestFixture]
public sealed class AbuseReportTests
{
    private static async Task<TestServer> Server()
    {
        var s = await TestServer.StartAsync(configure: o => o["Xmpp:Admins:0"] = "admin@localhost");
        foreach (var user in new[] { "juliet", "spammer", "admin" }) await s.AddUserAsync(user, user + "-pw");
        return s;
    }

    private static Task<TestClient> Online(TestServer s, string user) => TestClient.ConnectAsync(s, user, user + "-pw", "pc", sendPresence: true);

    private static string Report(string jid, string reason, string? stanzaId = null, string? text = null) =>
        $"<iq type='set'><block xmlns='urn:xmpp:blocking'><item jid='{jid}'>"
        + (reason.Length == 0 ? "<report xmlns='urn:xmpp:reporting:1'>" : $"<report xmlns='urn:xmpp:reporting:1' reason='{reason}'>")
        + (stanzaId is null ? "" : $"<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@localhost' id='{stanzaId}'/>")
        + (text is null ? "" : $"<text>{text}</text>")
        + "</report></item></block></iq>";

    [Test]
    public async Task A_report_with_a_block_is_kept_with_the_reported_message_and_listed_for_the_admin()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        await using (var spammer = await Online(server, "spammer"))
            await spammer.SendAsync("<message to='juliet@localhost' type='chat' id='spam1'><body>Cheap watches!</body></message>");
        var spam = await juliet.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "spam1");
        var stanzaId = spam.Child("stanza-id", Ns.StanzaId)!.Attr("id")!;

        var info = await juliet.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.Child("query", Ns.DiscoInfo)!.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")), Does.Contain("urn:xmpp:reporting:1"));

        var reply = await juliet.IqAsync(Report("spammer@localhost", "urn:xmpp:reporting:spam", stanzaId, "He keeps selling watches"));
        Assert.That(reply.Attr("type"), Is.EqualTo("result"), reply.ToString());
        var list = await juliet.IqAsync("<iq type='get'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
        Assert.That(list.Child("blocklist", Ns.Blocking)!.Elements("item", Ns.Blocking).Select(i => i.Attr("jid")), Is.EqualTo(new[] { "spammer@localhost" }));

        var kept = (await server.Get<AbuseReports>().ListAsync()).Single();
        Assert.That(kept.Reporter, Is.EqualTo("juliet@localhost"));
        Assert.That(kept.Reported, Is.EqualTo("spammer@localhost"));
        Assert.That(kept.Reason, Is.EqualTo("urn:xmpp:reporting:spam"));
        Assert.That(kept.Text, Is.EqualTo("He keeps selling watches"));
        Assert.That(kept.StanzaIds, Is.EqualTo(new[] { stanzaId }));
        Assert.That(kept.Messages.Single(), Does.Contain("Cheap watches!"), "the message is copied from Juliet's archive");

        await using var admin = await Online(server, "admin");
        var listed = await admin.IqAsync($"<iq type='set' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='{AbuseReportsModule.ListNode}' action='execute'/></iq>");
        var form = DataForm.Parse(listed.Child("command", Ns.Commands)!.Child("x", Ns.DataForms)!);
        var text = string.Join("\n", form.Values("report-1"));
        Assert.That(text, Does.Contain("juliet@localhost reported spammer@localhost for urn:xmpp:reporting:spam").And.Contain("Cheap watches!"));

        var refused = await juliet.IqAsync($"<iq type='set' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='{AbuseReportsModule.ListNode}' action='execute'/></iq>");
        Assert.That(refused.Child("error", Ns.Client)?.Child("forbidden", Ns.StanzaErrors), Is.Not.Null, "only admins read reports");

        var cleared = await admin.IqAsync($"<iq type='set' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='{AbuseReportsModule.ClearNode}' action='execute'/></iq>");
        Assert.That(cleared.Child("command", Ns.Commands)!.ChildText("note", Ns.Commands), Does.StartWith("1 report"));
        Assert.That(await server.Get<AbuseReports>().ListAsync(), Is.Empty);
    }

    [Test]
    public async Task A_report_without_a_reason_is_a_bad_request_and_blocks_nobody()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        var reply = await juliet.IqAsync(Report("spammer@localhost", ""));
        Assert.That(reply.Child("error", Ns.Client)?.Child("bad-request", Ns.StanzaErrors), Is.Not.Null, reply.ToString());
        var list = await juliet.IqAsync("<iq type='get'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
        Assert.That(list.Child("blocklist", Ns.Blocking)!.Elements("item", Ns.Blocking), Is.Empty);
        Assert.That(await server.Get<AbuseReports>().ListAsync(), Is.Empty);
    }

    [Test]
    public async Task An_account_files_at_most_the_daily_number_of_reports_while_its_blocks_still_work()
    {
        await using var server = await Server();
        await using var juliet = await Online(server, "juliet");
        for (int i = 0; i <= AbuseReports.MaxPerReporterPerDay; i++)
        {
            var reply = await juliet.IqAsync(Report($"bot{i}@spam.example", "urn:xmpp:reporting:abuse"));
            Assert.That(reply.Attr("type"), Is.EqualTo("result"));
        }
        Assert.That(await server.Get<AbuseReports>().ListAsync(), Has.Count.EqualTo(AbuseReports.MaxPerReporterPerDay));
        var list = await juliet.IqAsync("<iq type='get'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
        Assert.That(list.Child("blocklist", Ns.Blocking)!.Elements("item", Ns.Blocking).Count(), Is.EqualTo(AbuseReports.MaxPerReporterPerDay + 1));
    }
}
