using System.Text;
using Xmpp.Storage;

namespace Xmpp.Tests.Storage;

// What every IArchiveStore must do; the offline spool, MAM and MUC archives all rely on it.
public abstract class ArchiveStoreContract : StorageContract
{
    private static readonly DateTimeOffset T0 = new(2024, 6, 1, 8, 0, 0, TimeSpan.Zero);

    private IArchiveStore Archive => Storage.Archive("mam");

    private static byte[] Body(int n) => Encoding.UTF8.GetBytes($"<message><body>{n}</body></message>");

    // Ten records for juliet: n = 0..9, one minute apart, alternating romeo/nurse, stanza ids "s0".."s9";
    // plus two for other owners in between. Returns juliet's ids by n.
    private async Task<long[]> SeedAsync()
    {
        var ids = new long[10];
        for (var n = 0; n < 10; n++)
        {
            ids[n] = await Archive.AppendAsync("juliet", T0.AddMinutes(n), n % 2 == 0 ? "romeo@montague.lit" : "nurse@capulet.lit", Body(n), $"s{n}");
            if (n == 4)
            {
                await Archive.AppendAsync("romeo", T0, "juliet@capulet.lit", Body(100));
                await Archive.AppendAsync("julietta", T0, "romeo@montague.lit", Body(101));
            }
        }
        return ids;
    }

    private static int Number(byte[] payload)
    {
        var text = Encoding.UTF8.GetString(payload);
        var start = text.IndexOf("<body>", StringComparison.Ordinal) + "<body>".Length;
        return int.Parse(text[start..text.IndexOf("</body>", StringComparison.Ordinal)]);
    }

    private static int[] Numbers(ArchivePage page) => page.Records.Select(r => Number(r.Payload)).ToArray();

    [Test]
    public async Task Appended_record_is_returned_with_every_field()
    {
        var stamp = new DateTimeOffset(2024, 6, 1, 10, 11, 12, 345, TimeSpan.FromHours(2)).AddTicks(6789);

        var id = await Archive.AppendAsync("juliet", stamp, "romeo@montague.lit", Body(7), "stanza-1");

        var record = (await Archive.QueryAsync(new ArchiveQuery("juliet"))).Records.Single();
        Assert.That(record.Id, Is.EqualTo(id));
        Assert.That(record.Owner, Is.EqualTo("juliet"));
        Assert.That(record.Stamp, Is.EqualTo(stamp), "the same instant, to the tick");
        Assert.That(record.With, Is.EqualTo("romeo@montague.lit"));
        Assert.That(record.Payload, Is.EqualTo(Body(7)));
        Assert.That(record.StanzaId, Is.EqualTo("stanza-1"));
    }

    [Test]
    public async Task Record_without_stanza_id_has_null_stanza_id()
    {
        await Archive.AppendAsync("juliet", T0, "romeo@montague.lit", Body(1));

        Assert.That((await Archive.QueryAsync(new ArchiveQuery("juliet"))).Records.Single().StanzaId, Is.Null);
    }

    [Test]
    public async Task Appends_get_increasing_ids_and_come_back_in_append_order()
    {
        var ids = await SeedAsync();

        var page = await Archive.QueryAsync(new ArchiveQuery("juliet"));

        Assert.That(ids, Is.Ordered.Ascending.And.Unique);
        Assert.That(page.Records.Select(r => r.Id), Is.EqualTo(ids));
        Assert.That(Numbers(page), Is.EqualTo(Enumerable.Range(0, 10)));
        Assert.That(page.Complete, Is.True);
        Assert.That(page.TotalCount, Is.EqualTo(10));
    }

    [Test]
    public async Task Query_of_an_owner_without_records_is_empty_and_complete()
    {
        await SeedAsync();

        var page = await Archive.QueryAsync(new ArchiveQuery("jul"));

        Assert.That(page.Records, Is.Empty);
        Assert.That(page.Complete, Is.True);
        Assert.That(page.TotalCount, Is.Zero);
    }

    [Test]
    public async Task Query_by_with_returns_only_that_peer()
    {
        await SeedAsync();

        var page = await Archive.QueryAsync(new ArchiveQuery("juliet", With: "nurse@capulet.lit"));

        Assert.That(Numbers(page), Is.EqualTo(new[] { 1, 3, 5, 7, 9 }));
        Assert.That(page.TotalCount, Is.EqualTo(5));
    }

    [TestCase(3, null, new[] { 3, 4, 5, 6, 7, 8, 9 })]
    [TestCase(null, 2, new[] { 0, 1, 2 })]
    [TestCase(2, 5, new[] { 2, 3, 4, 5 })]
    [TestCase(5, 5, new[] { 5 })]
    [TestCase(6, 5, new int[0])]
    public async Task Start_and_end_are_inclusive(int? startMinute, int? endMinute, int[] expected)
    {
        await SeedAsync();

        var page = await Archive.QueryAsync(new ArchiveQuery("juliet",
            Start: startMinute is { } s ? T0.AddMinutes(s) : null, End: endMinute is { } e ? T0.AddMinutes(e) : null));

        Assert.That(Numbers(page), Is.EqualTo(expected));
        Assert.That(page.TotalCount, Is.EqualTo(expected.Length));
    }

    [Test]
    public async Task Start_compares_instants_not_local_clock_readings()
    {
        await SeedAsync();

        // 10:03 at +02:00 is 08:03 UTC.
        var page = await Archive.QueryAsync(new ArchiveQuery("juliet", Start: new DateTimeOffset(2024, 6, 1, 10, 3, 0, TimeSpan.FromHours(2))));

        Assert.That(Numbers(page), Is.EqualTo(new[] { 3, 4, 5, 6, 7, 8, 9 }));
    }

    [Test]
    public async Task After_and_before_are_exclusive_cursors()
    {
        var ids = await SeedAsync();

        var after = await Archive.QueryAsync(new ArchiveQuery("juliet", AfterId: ids[6]));
        var before = await Archive.QueryAsync(new ArchiveQuery("juliet", BeforeId: ids[2]));
        var between = await Archive.QueryAsync(new ArchiveQuery("juliet", AfterId: ids[3], BeforeId: ids[7]));

        Assert.That(Numbers(after), Is.EqualTo(new[] { 7, 8, 9 }));
        Assert.That(Numbers(before), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(Numbers(between), Is.EqualTo(new[] { 4, 5, 6 }));
    }

    [Test]
    public async Task Total_count_ignores_the_cursors_but_not_the_filters()
    {
        var ids = await SeedAsync();

        var page = await Archive.QueryAsync(new ArchiveQuery("juliet", With: "romeo@montague.lit", AfterId: ids[4], Max: 1));

        Assert.That(Numbers(page), Is.EqualTo(new[] { 6 }));
        Assert.That(page.TotalCount, Is.EqualTo(5));
    }

    [Test]
    public async Task Max_limits_the_page_and_complete_says_whether_more_follow()
    {
        await SeedAsync();

        var first = await Archive.QueryAsync(new ArchiveQuery("juliet", Max: 4));
        var exact = await Archive.QueryAsync(new ArchiveQuery("juliet", Max: 10));

        Assert.That(Numbers(first), Is.EqualTo(new[] { 0, 1, 2, 3 }));
        Assert.That(first.Complete, Is.False);
        Assert.That(exact.Records, Has.Count.EqualTo(10));
        Assert.That(exact.Complete, Is.True);
    }

    [Test]
    public async Task Reverse_takes_the_newest_records_but_returns_them_in_ascending_order()
    {
        var ids = await SeedAsync();

        var last = await Archive.QueryAsync(new ArchiveQuery("juliet", Max: 3, Reverse: true));
        var previous = await Archive.QueryAsync(new ArchiveQuery("juliet", BeforeId: ids[7], Max: 3, Reverse: true));
        var oldest = await Archive.QueryAsync(new ArchiveQuery("juliet", BeforeId: ids[3], Max: 3, Reverse: true));

        Assert.That(Numbers(last), Is.EqualTo(new[] { 7, 8, 9 }));
        Assert.That(last.Complete, Is.False);
        Assert.That(Numbers(previous), Is.EqualTo(new[] { 4, 5, 6 }));
        Assert.That(previous.Complete, Is.False);
        Assert.That(Numbers(oldest), Is.EqualTo(new[] { 0, 1, 2 }));
        Assert.That(oldest.Complete, Is.True);
    }

    [Test]
    public async Task Max_zero_returns_no_records_but_the_count()
    {
        await SeedAsync();

        var page = await Archive.QueryAsync(new ArchiveQuery("juliet", Max: 0));

        Assert.That(page.Records, Is.Empty);
        Assert.That(page.TotalCount, Is.EqualTo(10));
        Assert.That(page.Complete, Is.False);
    }

    [Test]
    public async Task Query_by_stanza_ids_returns_only_those_records()
    {
        await SeedAsync();

        var page = await Archive.QueryAsync(new ArchiveQuery("juliet", StanzaIds: ["s8", "s2", "unknown"]));
        var none = await Archive.QueryAsync(new ArchiveQuery("juliet", StanzaIds: []));

        Assert.That(Numbers(page), Is.EqualTo(new[] { 2, 8 }));
        Assert.That(page.TotalCount, Is.EqualTo(2));
        Assert.That(none.Records, Is.Empty);
    }

    [Test]
    public async Task Filters_combine()
    {
        await SeedAsync();

        var page = await Archive.QueryAsync(new ArchiveQuery("juliet", With: "romeo@montague.lit",
            Start: T0.AddMinutes(1), End: T0.AddMinutes(8), StanzaIds: ["s2", "s3", "s4", "s8", "s9"]));

        Assert.That(Numbers(page), Is.EqualTo(new[] { 2, 4, 8 }));
    }

    [Test]
    public async Task Paging_forward_with_after_visits_every_record_once()
    {
        await SeedAsync();
        var seen = new List<int>();
        long? after = null;
        ArchivePage page;
        do
        {
            page = await Archive.QueryAsync(new ArchiveQuery("juliet", AfterId: after, Max: 3));
            seen.AddRange(Numbers(page));
            after = page.Records.Count > 0 ? page.Records[^1].Id : after;
        } while (!page.Complete);

        Assert.That(seen, Is.EqualTo(Enumerable.Range(0, 10)));
    }

    [Test]
    public async Task Paging_backward_with_before_visits_every_filtered_record_once_newest_page_first()
    {
        await SeedAsync();
        var pages = new List<int[]>();
        long? before = null;
        ArchivePage page;
        do
        {
            page = await Archive.QueryAsync(new ArchiveQuery("juliet", With: "romeo@montague.lit", Start: T0.AddMinutes(1),
                BeforeId: before, Max: 2, Reverse: true));
            pages.Add(Numbers(page));
            before = page.Records.Count > 0 ? page.Records[0].Id : before;
        } while (!page.Complete);

        Assert.That(pages, Is.EqualTo(new[] { new[] { 6, 8 }, new[] { 2, 4 } }));
        Assert.That(page.TotalCount, Is.EqualTo(4));
    }

    [Test]
    public async Task Start_and_end_combine_with_with_and_the_cursors()
    {
        var ids = await SeedAsync();

        var page = await Archive.QueryAsync(new ArchiveQuery("juliet", With: "nurse@capulet.lit", Start: T0.AddMinutes(2),
            End: T0.AddMinutes(8), AfterId: ids[3], Max: 1));

        Assert.That(Numbers(page), Is.EqualTo(new[] { 5 }));
        Assert.That(page.Complete, Is.False);
        Assert.That(page.TotalCount, Is.EqualTo(3), "3, 5 and 7");
    }

    [Test]
    public async Task Start_after_the_newest_record_and_end_before_the_oldest_match_nothing()
    {
        await SeedAsync();

        var late = await Archive.QueryAsync(new ArchiveQuery("juliet", Start: T0.AddMinutes(9).AddTicks(1)));
        var early = await Archive.QueryAsync(new ArchiveQuery("juliet", End: T0.AddTicks(-1)));

        Assert.That(late.Records, Is.Empty);
        Assert.That(late.TotalCount, Is.Zero);
        Assert.That(early.Records, Is.Empty);
        Assert.That(early.Complete, Is.True);
    }

    [Test]
    public async Task A_stamp_older_than_the_owners_newest_record_is_raised_to_it()
    {
        await Archive.AppendAsync("juliet", T0.AddMinutes(5), "romeo@montague.lit", Body(1));
        await Archive.AppendAsync("juliet", T0.AddMinutes(2), "romeo@montague.lit", Body(2));
        await Archive.AppendAsync("romeo", T0, "juliet@capulet.lit", Body(3));

        var juliet = await Archive.QueryAsync(new ArchiveQuery("juliet"));
        var fromMinuteThree = await Archive.QueryAsync(new ArchiveQuery("juliet", Start: T0.AddMinutes(3)));
        var romeo = await Archive.QueryAsync(new ArchiveQuery("romeo"));

        Assert.That(juliet.Records.Select(r => r.Stamp), Is.EqualTo(new[] { T0.AddMinutes(5), T0.AddMinutes(5) }));
        Assert.That(Numbers(fromMinuteThree), Is.EqualTo(new[] { 1, 2 }), "time order is id order");
        Assert.That(romeo.Records.Single().Stamp, Is.EqualTo(T0), "another owner's clock is its own");
    }

    [Test]
    public async Task Find_id_returns_the_owners_record_with_that_stanza_id()
    {
        var ids = await SeedAsync();

        Assert.That(await Archive.FindIdAsync("juliet", "s7"), Is.EqualTo(ids[7]));
        Assert.That(await Archive.FindIdAsync("juliet", "s"), Is.Null, "no prefix match");
        Assert.That(await Archive.FindIdAsync("julietta", "s7"), Is.Null, "another owner's archive");
        Assert.That(await Archive.FindIdAsync("juliet", "s7\u0001"), Is.Null);
        Assert.That(await Archive.FindIdAsync("juliet", "s\u00017"), Is.Null);
    }

    [Test]
    public async Task Stanza_ids_combine_with_the_cursors_and_reverse()
    {
        var ids = await SeedAsync();
        string[] wanted = ["s1", "s3", "s5", "s7", "s9"];

        var after = await Archive.QueryAsync(new ArchiveQuery("juliet", StanzaIds: wanted, AfterId: ids[3], Max: 2));
        var last = await Archive.QueryAsync(new ArchiveQuery("juliet", StanzaIds: wanted, Max: 2, Reverse: true));

        Assert.That(Numbers(after), Is.EqualTo(new[] { 5, 7 }));
        Assert.That(after.Complete, Is.False);
        Assert.That(after.TotalCount, Is.EqualTo(5));
        Assert.That(Numbers(last), Is.EqualTo(new[] { 7, 9 }));
    }

    [Test]
    public async Task Delete_through_removes_the_owners_records_up_to_and_including_the_id()
    {
        var ids = await SeedAsync();

        var deleted = await Archive.DeleteThroughAsync("juliet", ids[3]);

        Assert.That(deleted, Is.EqualTo(4));
        Assert.That(Numbers(await Archive.QueryAsync(new ArchiveQuery("juliet"))), Is.EqualTo(new[] { 4, 5, 6, 7, 8, 9 }));
        Assert.That(await Archive.CountAsync("romeo"), Is.EqualTo(1), "other owners' records with lower ids stay");
        Assert.That(await Archive.CountAsync("julietta"), Is.EqualTo(1));
        Assert.That(await Archive.DeleteThroughAsync("juliet", ids[3]), Is.Zero);
    }

    [Test]
    public async Task Replace_changes_only_the_payload_of_the_owners_record()
    {
        var ids = await SeedAsync();

        Assert.That(await Archive.ReplaceAsync("juliet", ids[2], Body(42)), Is.True);
        Assert.That(await Archive.ReplaceAsync("romeo", ids[3], Body(43)), Is.False, "another owner's record is not touched");
        Assert.That(await Archive.ReplaceAsync("juliet", ids[9] + 1000, Body(44)), Is.False);

        var page = await Archive.QueryAsync(new ArchiveQuery("juliet"));
        Assert.That(Numbers(page), Is.EqualTo(new[] { 0, 1, 42, 3, 4, 5, 6, 7, 8, 9 }));
        var replaced = page.Records[2];
        Assert.That((replaced.Id, replaced.Stamp, replaced.With, replaced.StanzaId),
            Is.EqualTo((ids[2], T0.AddMinutes(2), "romeo@montague.lit", "s2")));
        Assert.That(await Archive.FindIdAsync("juliet", "s2"), Is.EqualTo(ids[2]));
    }

    [Test]
    public async Task Count_is_per_owner()
    {
        await SeedAsync();

        Assert.That(await Archive.CountAsync("juliet"), Is.EqualTo(10));
        Assert.That(await Archive.CountAsync("romeo"), Is.EqualTo(1));
        Assert.That(await Archive.CountAsync("jul"), Is.Zero);
    }

    [Test]
    public async Task Delete_all_removes_only_that_owners_records()
    {
        await SeedAsync();

        await Archive.DeleteAllAsync("juliet");

        Assert.That(await Archive.CountAsync("juliet"), Is.Zero);
        Assert.That(await Archive.CountAsync("julietta"), Is.EqualTo(1));
        Assert.That(await Archive.CountAsync("romeo"), Is.EqualTo(1));
    }

    [Test]
    public async Task Ids_keep_increasing_after_every_record_was_deleted()
    {
        var first = await Archive.AppendAsync("juliet", T0, "romeo@montague.lit", Body(1));
        await Archive.DeleteAllAsync("juliet");

        var second = await Archive.AppendAsync("juliet", T0, "romeo@montague.lit", Body(2));

        Assert.That(second, Is.GreaterThan(first));
    }

    [Test]
    public async Task Collections_are_separate_archives()
    {
        await Storage.Archive("offline").AppendAsync("juliet", T0, "romeo@montague.lit", Body(1));
        await Storage.Archive("mam").AppendAsync("juliet", T0, "romeo@montague.lit", Body(2));
        await Storage.Archive("mam").AppendAsync("juliet", T0, "romeo@montague.lit", Body(3));

        Assert.That(await Storage.Archive("offline").CountAsync("juliet"), Is.EqualTo(1));
        Assert.That(Numbers(await Storage.Archive("mam").QueryAsync(new ArchiveQuery("juliet"))), Is.EqualTo(new[] { 2, 3 }));
    }

    [TestCase("../evil")]
    [TestCase("")]
    [TestCase("Offline")]
    [TestCase("a-b")]
    public void Collection_names_outside_lowercase_letters_digits_and_underscore_are_rejected(string name)
    {
        Assert.That(() => Storage.Archive(name), Throws.ArgumentException);
    }

    [Test]
    public async Task Concurrent_appends_all_land_with_distinct_ids()
    {
        var ids = await Task.WhenAll(Enumerable.Range(0, 200).Select(n =>
            Task.Run(async () => await Archive.AppendAsync("juliet", T0, "romeo@montague.lit", Body(n)))));

        var page = await Archive.QueryAsync(new ArchiveQuery("juliet", Max: 1000));
        Assert.That(ids, Is.Unique);
        Assert.That(page.Records.Select(r => r.Id), Is.EqualTo(ids.Order()));
        Assert.That(Numbers(page).Order(), Is.EqualTo(Enumerable.Range(0, 200)));
    }
}
