using NUnit.Framework;
using Xmpp.Server.Streams;

namespace Xmpp.Tests.Server;

public class DisconnectWaveCollectorTests
{
    private const int Gen2 = 7;

    [Test]
    public void Ten_thousand_sessions_closing_asks_for_one_collection_and_not_again_on_later_sweeps()
    {
        var c = new DisconnectWaveCollector();
        Assert.That(c.Observe(10_000, Gen2, 0), Is.False);
        Assert.That(c.Observe(0, Gen2, 1_000), Is.True);
        // The collection it asked for shows up as a new gen-2 count; nothing more until another wave.
        Assert.That(c.Observe(0, Gen2 + 1, 2_000), Is.False);
        Assert.That(c.Observe(0, Gen2 + 1, 120_000), Is.False);
    }

    [Test]
    public void A_wave_spread_over_many_sweeps_counts_from_the_peak()
    {
        var c = new DisconnectWaveCollector();
        c.Observe(4_000, Gen2, 0);
        var fired = new List<int>();
        for (int open = 3_900, t = 1; open >= 0; open -= 100, t++)
            if (c.Observe(open, Gen2, t * 1_000)) fired.Add(open);
        Assert.That(fired, Is.EqualTo(new[] { 2_000 }), "first sweep at or below half the peak with at least 1,000 gone");
    }

    [TestCase(10_000, 9_100, TestName = "Fewer than a thousand closed connections are not a wave")]
    [TestCase(10_000, 5_001, TestName = "More than half of the peak still open is not a wave")]
    [TestCase(1_500, 600, TestName = "A small server losing under a thousand connections is not a wave")]
    public void Small_drops_ask_for_nothing(int peak, int after)
    {
        var c = new DisconnectWaveCollector();
        c.Observe(peak, Gen2, 0);
        Assert.That(c.Observe(after, Gen2, 1_000), Is.False);
    }

    [Test]
    public void A_gen2_collection_of_the_gcs_own_after_the_peak_already_took_the_garbage()
    {
        var c = new DisconnectWaveCollector();
        c.Observe(10_000, Gen2, 0);
        Assert.That(c.Observe(6_000, Gen2 + 1, 1_000), Is.False);
        Assert.That(c.Observe(4_900, Gen2 + 1, 2_000), Is.False, "from 10,000 this would be a wave; from 6,000 it is not ...");
        var d = new DisconnectWaveCollector();
        d.Observe(10_000, Gen2, 0);
        d.Observe(6_000, Gen2 + 1, 1_000);
        Assert.That(d.Observe(2_000, Gen2 + 1, 2_000), Is.True, "... and 6,000 to 2,000 is one");
    }

    [Test]
    public void A_second_wave_within_a_minute_waits_for_the_minute()
    {
        var c = new DisconnectWaveCollector();
        c.Observe(10_000, Gen2, 0);
        Assert.That(c.Observe(0, Gen2, 1_000), Is.True);
        c.Observe(8_000, Gen2 + 1, 10_000);
        Assert.That(c.Observe(0, Gen2 + 1, 20_000), Is.False);
        Assert.That(c.Observe(0, Gen2 + 1, 61_000), Is.True);
    }
}
