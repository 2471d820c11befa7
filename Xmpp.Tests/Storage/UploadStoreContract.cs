using Xmpp.Storage;

namespace Xmpp.Tests.Storage;

// What every IUploadStore must do.
public abstract class UploadStoreContract : StorageContract
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static UploadRecord Record(string id, string owner = "juliet@capulet.lit", long size = 10, int minutes = 0) =>
        new(id, owner, "balcony é.jpg", "image/jpeg", size, T0.AddMinutes(minutes));

    [Test]
    public async Task An_added_record_is_returned_by_id_with_every_field()
    {
        var record = Record("a1", size: 123_456_789_012);
        Assert.That(await Storage.Uploads.AddAsync(record), Is.True);

        Assert.That(await Storage.Uploads.GetAsync("a1"), Is.EqualTo(record));
        Assert.That(await Storage.Uploads.GetAsync("A1"), Is.Null);
    }

    [Test]
    public async Task A_second_record_with_the_same_id_is_refused_and_the_first_kept()
    {
        await Storage.Uploads.AddAsync(Record("a1", size: 1));

        Assert.That(await Storage.Uploads.AddAsync(Record("a1", size: 2)), Is.False);
        Assert.That((await Storage.Uploads.GetAsync("a1"))!.Size, Is.EqualTo(1));
    }

    [Test]
    public async Task Delete_returns_true_once_and_then_false()
    {
        await Storage.Uploads.AddAsync(Record("a1"));

        Assert.That(await Storage.Uploads.DeleteAsync("a1"), Is.True);
        Assert.That(await Storage.Uploads.DeleteAsync("a1"), Is.False);
        Assert.That(await Storage.Uploads.GetAsync("a1"), Is.Null);
    }

    [Test]
    public async Task Used_bytes_and_listing_cover_only_that_owner()
    {
        await Storage.Uploads.AddAsync(Record("b", size: 5, minutes: 2));
        await Storage.Uploads.AddAsync(Record("a", size: 7, minutes: 1));
        await Storage.Uploads.AddAsync(Record("c", owner: "romeo@montague.lit", size: 100));

        Assert.That(await Storage.Uploads.UsedBytesAsync("juliet@capulet.lit"), Is.EqualTo(12));
        Assert.That(await Storage.Uploads.UsedBytesAsync("nobody@capulet.lit"), Is.Zero);
        Assert.That((await Storage.Uploads.ListByOwnerAsync("juliet@capulet.lit")).Select(r => r.Id), Is.EqualTo(new[] { "a", "b" }));
    }

    [Test]
    public async Task Records_created_before_a_time_are_listed_oldest_first_up_to_the_limit()
    {
        for (int i = 0; i < 5; i++) await Storage.Uploads.AddAsync(Record("r" + i, minutes: 10 - i));

        var old = await Storage.Uploads.ListCreatedBeforeAsync(T0.AddMinutes(9), 2);

        Assert.That(old.Select(r => r.Id), Is.EqualTo(new[] { "r4", "r3" }));
        Assert.That(await Storage.Uploads.ListCreatedBeforeAsync(T0.AddMinutes(6), 10), Is.Empty);
    }
}
