using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Tests.Server;

/// The directory is the one place a bound session's shared flags change (carbons, CSI, blocklist interest), so the
/// same module code works when an entry describes a session on another node.
[TestFixture]
[Category("Sessions")]
public sealed class SessionDirectoryTests
{
    private sealed class Sink(Jid jid) : ISessionSink
    {
        public Jid Jid { get; } = jid;
        public string? ClosedWith;
        public bool Send(Element stanza) => true;
        public void Close(string streamErrorCondition, string? text = null) => ClosedWith = streamErrorCondition;
    }

    private static readonly Jid Home = Jid.Parse("romeo@localhost/home");

    private static (ISessionDirectory Directory, Sink Sink) Bound(SessionEntry? template = null)
    {
        ISessionDirectory directory = new SessionDirectory();
        var sink = new Sink(Home);
        directory.Bind((template ?? new SessionEntry(Home, sink)) with { Sink = sink });
        return (directory, sink);
    }

    [Test]
    public void A_new_entry_has_every_flag_off()
    {
        var (directory, _) = Bound();
        var e = directory.Find(Home)!;
        Assert.That((e.Carbons, e.CsiInactive, e.BlocklistRequested, e.UserAgentId), Is.EqualTo((false, false, false, (string?)null)));
    }

    [Test]
    public void Carbons_flip_through_the_directory_and_readers_see_the_new_entry()
    {
        var (directory, sink) = Bound();
        var before = directory.Get(Home.Bare);
        Assert.That(directory.SetCarbons(sink, true)!.Carbons, Is.True);
        Assert.That(directory.Find(Home)!.Carbons, Is.True);
        // Copy on write: a reader holding the old set still sees the old entry.
        Assert.That(before.Find("home")!.Carbons, Is.False);
        Assert.That(directory.SetCarbons(sink, false)!.Carbons, Is.False);
        Assert.That(directory.Find(Home)!.Carbons, Is.False);
    }

    [Test]
    public void Csi_and_blocklist_interest_change_only_their_own_flag()
    {
        var (directory, sink) = Bound();
        directory.Update(sink, e => e with { Available = true, Priority = 5 });
        directory.SetCsiInactive(sink, true);
        directory.SetBlocklistRequested(sink);
        var e = directory.Find(Home)!;
        Assert.That((e.CsiInactive, e.BlocklistRequested, e.Carbons, e.Available, e.Priority), Is.EqualTo((true, true, false, true, 5)));
        directory.SetCsiInactive(sink, false);
        Assert.That(directory.Find(Home)!.CsiInactive, Is.False);
        Assert.That(directory.Find(Home)!.BlocklistRequested, Is.True);
    }

    [Test]
    public void Setting_an_unchanged_flag_keeps_the_same_entry()
    {
        var (directory, sink) = Bound();
        var first = directory.SetCarbons(sink, true);
        Assert.That(directory.SetCarbons(sink, true), Is.SameAs(first));
    }

    [Test]
    public void A_sink_that_is_not_bound_changes_nothing()
    {
        var (directory, _) = Bound();
        var stranger = new Sink(Home); // same full JID, another session: it must not touch the bound one's entry
        Assert.That(directory.SetCarbons(stranger, true), Is.Null);
        Assert.That(directory.SetCsiInactive(stranger, true), Is.Null);
        Assert.That(directory.SetBlocklistRequested(stranger), Is.Null);
        var e = directory.Find(Home)!;
        Assert.That((e.Carbons, e.CsiInactive, e.BlocklistRequested), Is.EqualTo((false, false, false)));
        Assert.That(((ISessionDirectory)new SessionDirectory()).SetCarbons(stranger, true), Is.Null);
    }

    [Test]
    public void An_entry_bound_with_flags_keeps_them_and_unbinding_forgets_them()
    {
        var (directory, sink) = Bound(new SessionEntry(Home, new Sink(Home), Carbons: true, UserAgentId: "d4565fa7"));
        Assert.That(directory.Find(Home)!.Carbons, Is.True);
        Assert.That(directory.Find(Home)!.UserAgentId, Is.EqualTo("d4565fa7"));
        directory.Unbind(sink);
        Assert.That(directory.Find(Home), Is.Null);
        Assert.That(directory.SetCarbons(sink, false), Is.Null);
    }

    [Test]
    public void A_plain_sink_is_replaced_by_being_closed_with_conflict()
    {
        ISessionSink sink = new Sink(Home);
        sink.Replace("Replaced by a new connection with the same resource");
        Assert.That(((Sink)sink).ClosedWith, Is.EqualTo(StreamErrors.Conflict));
    }
}
