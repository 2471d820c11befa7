using Xmpp.Protocol;
using Xmpp.Server.Modules.Pep;
using Xmpp.Server.Sessions;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

// XEP-0163 with real slixmpp clients (Interop/clients/slix_pep.py): Romeo publishes with publish-options (XEP-0222
// style), Juliet announces +notify through XEP-0115 caps and receives the notification.
[TestFixture]
[Category("Interop")]
public sealed class SlixmppPepInteropTests : InteropFixture
{
    private const string Script = "slix_pep.py";
    private const string Tune = "http://jabber.org/protocol/tune";
    private const string Song = "<tune xmlns='http://jabber.org/protocol/tune'><artist>Nino Rota</artist><title>Love Theme</title></tune>";

    protected override void RequireClients() => ClientProcess.RequirePythonModule("slixmpp", "python3-slixmpp");

    private async Task Lovers()
    {
        foreach (var (user, contact) in new[] { ("romeo", Juliet), ("juliet", Romeo) })
            await _server.Get<IStorage>().Rosters.SetItemAsync(user,
                new RosterItem(contact, null, [], Subscription.Both, AskOut: false, PendingIn: false, PreApproved: false, InRoster: true));
    }

    /// True once the server has resolved Juliet's caps and knows she wants the node.
    private bool JulietWants(string node)
    {
        var caps = _server.Get<PepCaps>();
        return _server.Get<ISessionDirectory>().Get(Jid.Parse(Juliet)).Available()
            .Any(e => caps.Known(e.Jid, e.Presence)?.Contains(node + "+notify") == true);
    }

    [Test]
    public async Task Slixmpp_publish_with_publish_options_reaches_a_slixmpp_contact_that_announced_notify()
    {
        await Lovers();
        using var juliet = ClientProcess.StartScript(Script, "watch", Juliet, "jul1et-pass", _server, extra: ["--node", Tune]);
        await juliet.WaitForEventAsync("online");
        Assert.That(await Wait.UntilAsync(() => JulietWants(Tune)), "the server resolved slixmpp's caps with +notify\n" + juliet.Describe());

        using var romeo = await ClientProcess.RunScriptAsync(Script, "publish", Romeo, "r0meo-pass", _server, extra:
            ["--node", Tune, "--payload", Song, "--id", "current", "--option", "pubsub#access_model=presence", "--option", "pubsub#max_items=1",
             // Every publish of this run carries all options: they hold again for the second one ("1" means true).
             "--payload", Song, "--id", "current", "--option", "pubsub#persist_items=1"]);
        // A conflicting access model is a precondition that is not met (XEP-0060 §7.1.5).
        using var romeoConflict = await ClientProcess.RunScriptAsync(Script, "publish", Romeo, "r0meo-pass", _server, extra:
            ["--node", Tune, "--payload", Song, "--option", "pubsub#access_model=open"]);
        await juliet.WaitForExitAsync();

        Assert.That(romeo.ExitCode, Is.EqualTo(0), romeo.Describe());
        Assert.That(romeo.EventsNamed("published").Select(e => ClientProcess.Text(e, "id")), Is.EqualTo(new[] { "current", "current" }), romeo.Describe());
        var conflict = romeoConflict.EventsNamed("publish_error").Single();
        Assert.That(ClientProcess.Text(conflict, "condition"), Is.EqualTo("conflict"), romeoConflict.Describe());
        Assert.That(ClientProcess.Text(conflict, "pubsub"), Is.EqualTo("precondition-not-met"));

        Assert.That(juliet.ExitCode, Is.EqualTo(0), juliet.Describe());
        var pep = juliet.EventsNamed("pep").Single();
        Assert.Multiple(() =>
        {
            Assert.That(ClientProcess.Text(pep, "from"), Is.EqualTo(Romeo));
            Assert.That(ClientProcess.Text(pep, "node"), Is.EqualTo(Tune));
            Assert.That(ClientProcess.Text(pep, "id"), Is.EqualTo("current"));
            Assert.That(ClientProcess.Text(pep, "payload"), Does.Contain("Love Theme"));
        });
    }

    [Test]
    public async Task A_slixmpp_contact_coming_online_gets_the_last_published_item_with_a_delay()
    {
        await Lovers();
        using var romeo = await ClientProcess.RunScriptAsync(Script, "publish", Romeo, "r0meo-pass", _server,
            extra: ["--node", Tune, "--payload", Song, "--id", "current"]);
        Assert.That(romeo.EventsNamed("published"), Has.Count.EqualTo(1), romeo.Describe());

        using var juliet = await ClientProcess.RunScriptAsync(Script, "watch", Juliet, "jul1et-pass", _server, extra: ["--node", Tune]);
        Assert.That(juliet.ExitCode, Is.EqualTo(0), juliet.Describe());
        var pep = juliet.EventsNamed("pep").Single();
        Assert.That(ClientProcess.Text(pep, "id"), Is.EqualTo("current"));
        Assert.That(ClientProcess.Text(pep, "delay"), Is.Not.Null, juliet.Describe());
    }
}
