using System.Security.Cryptography;
using Xmpp.Storage;

namespace Xmpp.Server.Cli;

/// Copies everything one storage holds into another (xmppd migrate), through the stores' own interfaces, so it works
/// between any two backends. Running it again, or after it was cut short, gives the same result and no duplicates:
/// accounts, roster items, documents and upload records are written by key (what the target holds for a source owner
/// is made equal to the source's); an archive (per collection and owner) is append-only and written in id order, so
/// what a run that was killed committed is a prefix of it, and the next run appends only what follows the target's
/// newest record (found by its stanza id, else by position). An owner whose archive still differs in size afterwards
/// (the source changed between runs, or the target held other data) is copied again from scratch.
///
/// Archive records get the target's own ids; their stamps, peers, stanza ids (the ids clients page by, XEP-0359) and
/// payloads are kept. The roster version counter (XEP-0237) restarts in the target: a client's cached version then no
/// longer matches and it receives the whole roster once.
public sealed class StorageMigration(IStorage source, IStorage target, TextWriter output)
{
    private const int PageSize = 500;
    private const int InFlight = 4096;

    private readonly IStorageInventory _sourceInventory = (IStorageInventory)source;
    private readonly IStorageInventory _targetInventory = (IStorageInventory)target;
    private long _archiveRecords;

    /// Test hook (XMPP_MIGRATE_TEST_KILL_AFTER): called with the number of archive records queued so far, to stop the
    /// process in the middle of a copy as a kill would.
    public Action<long>? ArchiveRecordQueued { get; init; }

    public async Task CopyAsync()
    {
        await CopyAccountsAsync();
        await CopyRostersAsync();
        await CopyDocumentsAsync();
        await CopyUploadsAsync();
        foreach (var collection in await _sourceInventory.ArchiveCollectionsAsync())
            await CopyArchiveAsync(collection);
        await target.FlushAsync();
    }

    private async Task CopyAccountsAsync()
    {
        var writes = new List<Task>();
        foreach (var name in await source.Accounts.ListAsync())
        {
            if (await source.Accounts.FindAsync(name) is not { } account) continue;
            var existing = await target.Accounts.FindAsync(name);
            if (existing is null)
                writes.Add(target.Accounts.CreateAsync(account).AsTask());
            else if (!Same(existing, account))
                writes.Add(target.Accounts.UpdateAsync(account).AsTask());
            await Drain(writes);
        }
        await Task.WhenAll(writes);
        output.WriteLine("accounts: copied");
    }

    private async Task CopyRostersAsync()
    {
        var writes = new List<Task>();
        foreach (var user in await _sourceInventory.RosterOwnersAsync())
        {
            var wanted = (await source.Rosters.GetAsync(user)).Items;
            var held = (await target.Rosters.GetAsync(user)).Items.ToDictionary(i => i.Jid, StringComparer.Ordinal);
            foreach (var item in wanted)
                if (!held.Remove(item.Jid, out var existing) || !Same(existing, item))
                    writes.Add(target.Rosters.SetItemAsync(user, item).AsTask());
            foreach (var extra in held.Keys)
                writes.Add(target.Rosters.RemoveItemAsync(user, extra).AsTask());
            await Drain(writes);
        }
        await Task.WhenAll(writes);
        output.WriteLine("rosters: copied");
    }

    // Private XML, vCards, PEP nodes and items, blocking lists, MAM preferences, MUC rooms and affiliations, push
    // registrations, FAST tokens, invitations, abuse reports, message-request choices: every document of every owner.
    private async Task CopyDocumentsAsync()
    {
        var writes = new List<Task>();
        foreach (var owner in await _sourceInventory.KeyValueOwnersAsync())
        {
            var held = (await target.KeyValue.ListAsync(owner)).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
            foreach (var (key, value) in await source.KeyValue.ListAsync(owner))
                if (!held.Remove(key, out var existing) || !existing.AsSpan().SequenceEqual(value))
                    writes.Add(target.KeyValue.SetAsync(owner, key, value).AsTask());
            foreach (var extra in held.Keys)
                writes.Add(target.KeyValue.DeleteAsync(owner, extra).AsTask());
            await Drain(writes);
        }
        await Task.WhenAll(writes);
        output.WriteLine("documents: copied");
    }

    // The records only: the files stay in the upload folder (Xmpp:Upload), which both storages share.
    private async Task CopyUploadsAsync()
    {
        foreach (var record in await AllUploadsAsync(source))
            if (await target.Uploads.GetAsync(record.Id) is null)
                await target.Uploads.AddAsync(record);
        output.WriteLine("upload records: copied");
    }

    private static ValueTask<IReadOnlyList<UploadRecord>> AllUploadsAsync(IStorage storage) =>
        storage.Uploads.ListCreatedBeforeAsync(DateTimeOffset.MaxValue, int.MaxValue);

    private async Task CopyArchiveAsync(string collection)
    {
        var from = source.Archive(collection);
        var to = target.Archive(collection);
        long copied = 0;
        foreach (var owner in await _sourceInventory.ArchiveOwnersAsync(collection))
        {
            copied += await CopyOwnerAsync(from, to, owner, fresh: false);
            // Differing sizes mean the target is not a prefix of the source after all: start this owner again.
            if (await to.CountAsync(owner) != await from.CountAsync(owner))
            {
                await to.DeleteAllAsync(owner);
                copied += await CopyOwnerAsync(from, to, owner, fresh: true);
            }
        }
        output.WriteLine($"archive {collection}: {copied} records copied");
    }

    private async Task<long> CopyOwnerAsync(IArchiveStore from, IArchiveStore to, string owner, bool fresh)
    {
        var after = fresh ? 0 : await ResumePointAsync(from, to, owner);
        if (after is null) return 0;
        long copied = 0;
        var writes = new List<Task>();
        while (true)
        {
            var page = await from.QueryAsync(new ArchiveQuery(owner, AfterId: after, Max: PageSize));
            foreach (var record in page.Records)
            {
                // Queued in order and committed in order: a run cut short leaves a prefix in the target.
                writes.Add(to.AppendAsync(owner, record.Stamp, record.With, record.Payload, record.StanzaId).AsTask());
                copied++;
                ArchiveRecordQueued?.Invoke(Interlocked.Increment(ref _archiveRecords));
            }
            if (page.Records.Count > 0) after = page.Records[^1].Id;
            await Drain(writes);
            if (page.Complete || page.Records.Count == 0) break;
        }
        await Task.WhenAll(writes);
        return copied;
    }

    // The source id after which the target is missing records: 0 when it has none of the owner's, the source id of
    // the target's newest record (by stanza id, else by position) when it has some, null when it has them all.
    private static async Task<long?> ResumePointAsync(IArchiveStore from, IArchiveStore to, string owner)
    {
        var held = await to.CountAsync(owner);
        if (held == 0) return 0;
        var total = await from.CountAsync(owner);
        if (held >= total) return held == total ? null : 0;
        var newest = (await to.QueryAsync(new ArchiveQuery(owner, Max: 1, Reverse: true))).Records[0];
        if (newest.StanzaId is { } stanzaId && await from.FindIdAsync(owner, stanzaId) is { } id)
            return id;
        // The held-th record of the source.
        long? after = 0;
        var skip = held;
        while (true)
        {
            var page = await from.QueryAsync(new ArchiveQuery(owner, AfterId: after, Max: Math.Min(skip, PageSize)));
            if (page.Records.Count == 0) return 0;
            skip -= page.Records.Count;
            after = page.Records[^1].Id;
            if (skip == 0) return after;
        }
    }

    private static async Task Drain(List<Task> writes)
    {
        if (writes.Count < InFlight) return;
        await Task.WhenAll(writes);
        writes.Clear();
    }

    /// Per store, how many entries each side holds: what the migration must end with equal.
    public async Task<IReadOnlyList<StoreCount>> CountAsync()
    {
        var counts = new List<StoreCount>
        {
            new("accounts", await source.Accounts.CountAsync(), await target.Accounts.CountAsync()),
            new("roster items", await RosterItemsAsync(source), await RosterItemsAsync(target)),
            new("documents", await DocumentsAsync(source), await DocumentsAsync(target)),
            new("upload records", (await AllUploadsAsync(source)).Count, (await AllUploadsAsync(target)).Count),
        };
        var collections = new SortedSet<string>(await _sourceInventory.ArchiveCollectionsAsync(), StringComparer.Ordinal);
        collections.UnionWith(await _targetInventory.ArchiveCollectionsAsync());
        foreach (var collection in collections)
            counts.Add(new($"archive {collection}", await ArchiveRecordsAsync(source, collection), await ArchiveRecordsAsync(target, collection)));
        return counts;
    }

    private static async Task<long> RosterItemsAsync(IStorage storage)
    {
        long n = 0;
        foreach (var user in await ((IStorageInventory)storage).RosterOwnersAsync())
            n += (await storage.Rosters.GetAsync(user)).Items.Count;
        return n;
    }

    private static async Task<long> DocumentsAsync(IStorage storage)
    {
        long n = 0;
        foreach (var owner in await ((IStorageInventory)storage).KeyValueOwnersAsync())
            n += (await storage.KeyValue.ListAsync(owner)).Count;
        return n;
    }

    private static async Task<long> ArchiveRecordsAsync(IStorage storage, string collection)
    {
        long n = 0;
        var archive = storage.Archive(collection);
        foreach (var owner in await ((IStorageInventory)storage).ArchiveOwnersAsync(collection))
            n += await archive.CountAsync(owner);
        return n;
    }

    private static bool Same(Account a, Account b) =>
        a.Username == b.Username && a.Created == b.Created && a.LastLogout == b.LastLogout && a.LastStatus == b.LastStatus
        && a.Credentials.Count == b.Credentials.Count
        && a.Credentials.Zip(b.Credentials).All(p => p.First.Hash == p.Second.Hash && p.First.Iterations == p.Second.Iterations
            && p.First.Salt.AsSpan().SequenceEqual(p.Second.Salt)
            && CryptographicOperations.FixedTimeEquals(p.First.StoredKey, p.Second.StoredKey)
            && CryptographicOperations.FixedTimeEquals(p.First.ServerKey, p.Second.ServerKey));

    private static readonly string[] NoGroups = [];

    private static bool Same(RosterItem a, RosterItem b) =>
        a with { Groups = NoGroups } == b with { Groups = NoGroups } && a.Groups.SequenceEqual(b.Groups, StringComparer.Ordinal);
}

/// One store's entries on each side of a migration.
public sealed record StoreCount(string Store, long Source, long Target)
{
    public bool Matches => Source == Target;
}
