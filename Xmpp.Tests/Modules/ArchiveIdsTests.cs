using Xmpp.Server.Modules.Mam;

namespace Xmpp.Tests.Modules;

[TestFixture]
public sealed class ArchiveIdsTests
{
    [Test]
    public void Archive_ids_are_distinct_version_4_uuids_across_buffer_refills()
    {
        // 4 KiB of random bytes make 256 ids: 1,000 cross several refills.
        var ids = Enumerable.Range(0, 1000).Select(_ => ArchiveIds.Next()).ToList();

        Assert.That(ids, Is.Unique);
        foreach (var id in ids)
        {
            Assert.That(Guid.TryParseExact(id, "D", out _), Is.True, id);
            Assert.That(id[14], Is.EqualTo('4'), "version 4 (RFC 9562 §5.4)");
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
}
