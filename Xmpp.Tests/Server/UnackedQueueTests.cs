using Xmpp.Protocol.Xml;
using Xmpp.Server.Streams.StreamManagement;

namespace Xmpp.Tests.Server;

/// XEP-0198 §4 counting: 'h' is an unsigned 32-bit number that wraps to zero.
[TestFixture]
public sealed class UnackedQueueTests
{
    private static UnackedStanza Msg(int i) => new(new Element("message").SetAttr("id", "m" + i), DateTimeOffset.UnixEpoch, null);

    [Test]
    public void Acknowledging_h_releases_the_stanzas_up_to_it_in_order()
    {
        var q = new UnackedQueue();
        for (int i = 1; i <= 5; i++) q.Add(Msg(i));
        Assert.That(q.Sent, Is.EqualTo(5u));
        Assert.That(q.Acknowledge(3), Is.True);
        Assert.That(q.Items.Select(s => s.Stanza.Attr("id")), Is.EqualTo(new[] { "m4", "m5" }));
        Assert.That(q.Acked, Is.EqualTo(3u));
        Assert.That(q.Acknowledge(3), Is.True, "the same h again releases nothing");
        Assert.That(q.Count, Is.EqualTo(2));
    }

    [Test]
    public void The_counter_wraps_from_4294967295_to_0_and_acks_across_the_wrap()
    {
        var q = new UnackedQueue(uint.MaxValue - 1);
        for (int i = 1; i <= 4; i++) q.Add(Msg(i));
        Assert.That(q.Sent, Is.EqualTo(2u), "4294967294 + 4 = 2 (mod 2^32)");
        Assert.That(q.Acknowledge(uint.MaxValue), Is.True);
        Assert.That(q.Items.Select(s => s.Stanza.Attr("id")), Is.EqualTo(new[] { "m2", "m3", "m4" }));
        Assert.That(q.Acknowledge(1), Is.True, "h=1 lies after the wrap");
        Assert.That(q.Items.Select(s => s.Stanza.Attr("id")), Is.EqualTo(new[] { "m4" }));
        Assert.That(q.Acknowledge(2), Is.True);
        Assert.That(q.Count, Is.Zero);
    }

    [TestCase(0u, 6u)]
    [TestCase(uint.MaxValue - 1, 6u)]
    [TestCase(uint.MaxValue, 100u)]
    public void An_h_higher_than_what_was_sent_is_refused_and_changes_nothing(uint start, uint tooHigh)
    {
        var q = new UnackedQueue(start);
        for (int i = 1; i <= 5; i++) q.Add(Msg(i));
        var h = unchecked(start + tooHigh);
        Assert.That(q.Releases(h), Is.EqualTo(-1));
        Assert.That(q.Acknowledge(h), Is.False);
        Assert.That(q.Count, Is.EqualTo(5));
        Assert.That(q.Acked, Is.EqualTo(start));
    }

    [Test]
    public void Taking_everything_leaves_an_empty_queue_fully_acknowledged()
    {
        var q = new UnackedQueue(10);
        for (int i = 1; i <= 3; i++) q.Add(Msg(i));
        var all = q.TakeAll();
        Assert.That(all.Select(s => s.Stanza.Attr("id")), Is.EqualTo(new[] { "m1", "m2", "m3" }));
        Assert.That(q.Count, Is.Zero);
        Assert.That(q.Acked, Is.EqualTo(13u));
    }
}
