using Xmpp.Server.Modules.Mam;

namespace Xmpp.Tests.Modules;

[TestFixture]
public sealed class ArchiveIdsTests
{
    [Test]
    public void Archive_ids_are_distinct_version_7_uuids_across_buffer_refills()
    {
        // 4 KiB of random bytes make 256 ids: 1,000 cross several refills.
        var ids = Enumerable.Range(0, 1000).Select(_ => ArchiveIds.Next()).ToList();

        Assert.That(ids, Is.Unique);
        foreach (var id in ids)
        {
            Assert.That(Guid.TryParseExact(id, "D", out _), Is.True, id);
            Assert.That(id[14], Is.EqualTo('7'), "version 7 (RFC 9562 §5.7)");
            Assert.That(id[19], Is.AnyOf('8', '9', 'a', 'b'), "variant 10");
        }
    }

    [Test]
    public async Task Threads_draw_different_ids()
    {
        var batches = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
            Enumerable.Range(0, 300).Select(_ => ArchiveIds.Next()).ToList())));

        Assert.That(batches.SelectMany(b => b), Is.Unique);
    }

    [Test]
    public void Ids_of_a_later_millisecond_sort_after_those_of_an_earlier_one_and_carry_its_time()
    {
        var t0 = DateTimeOffset.FromUnixTimeMilliseconds(1_796_000_000_000);
        var earlier = Enumerable.Range(0, 100).Select(_ => ArchiveIds.Next(t0)).ToList();
        var later = Enumerable.Range(0, 100).Select(_ => ArchiveIds.Next(t0.AddMilliseconds(1))).ToList();

        // Ordinal order of the text is the order of the 128-bit value: what a database index on the text sorts by.
        Assert.That(string.CompareOrdinal(earlier.Max(StringComparer.Ordinal), later.Min(StringComparer.Ordinal)), Is.Negative);
        Assert.That(Convert.ToInt64(earlier[0].Replace("-", "")[..12], 16), Is.EqualTo(t0.ToUnixTimeMilliseconds()));
    }

    [Test]
    public void Ids_of_one_millisecond_differ_in_their_random_bits()
    {
        var now = DateTimeOffset.UtcNow;
        var ids = Enumerable.Range(0, 1000).Select(_ => ArchiveIds.Next(now)).ToList();

        Assert.That(ids, Is.Unique);
        // 74 random bits: after the 12 hex digits of time, the 3 after the version digit and the 15 after the variant
        // digit (plus its 2 low bits) vary. A counter would leave most of them alike between neighbours.
        var distinctTails = ids.Select(id => id.Replace("-", "")[20..]).Distinct().Count();
        Assert.That(distinctTails, Is.EqualTo(ids.Count));
    }
}
