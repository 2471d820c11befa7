using LiteDB;

namespace Xmpp.Storage.Log;

internal sealed partial class LogArchiveStore
{
    // A pass starts once this many entries wait in memory, or after IndexInterval with any waiting.
    private const int IndexBatch = 10_000;
    private static readonly TimeSpan IndexInterval = TimeSpan.FromSeconds(1);

    private readonly Task _indexer;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _wake = new(0);
    private int _wakeRequested;
    private (int Segment, long Offset) _checkpoint;

    private void WakeIndexer()
    {
        if (Interlocked.Exchange(ref _wakeRequested, 1) == 0)
            _wake.Release();
    }

    private async Task IndexLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(IndexInterval, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            Volatile.Write(ref _wakeRequested, 0);
            try
            {
                await IndexPassAsync().ConfigureAwait(false);
            }
            catch (Exception) when (!_stopping.IsCancellationRequested)
            {
                // The entries stay in memory and in the log; the next pass tries again (the writer waits past MaxTail).
            }
            _indexed.Release();
        }
    }

    private sealed record OwnerSnapshot(
        string Owner, LogOwner State, LogEntry[] Tail, KeyValuePair<long, LogLocation>[] Replaced, long DeletedThrough, bool Deleting);

    // Moves what waits in memory into the index blocks, in one LiteDB transaction with the log position it covers and
    // the live records per segment; then drops it from memory and removes segment files nothing refers to any more.
    private async Task IndexPassAsync()
    {
        var owners = new List<OwnerSnapshot>();
        (int Segment, long Offset) position;
        long lastId;
        Dictionary<int, long> live;
        lock (_gate)
        {
            if (_unindexed.Count == 0 && _applied == _checkpoint)
                return;
            foreach (var state in _unindexed)
            {
                owners.Add(new OwnerSnapshot(state.Name, state, state.Tail.ToArray(), state.Replaced.ToArray(), state.DeletedThrough,
                    state.DeletedThrough > state.IndexedDeletedThrough));
            }
            position = _applied;
            lastId = _appliedLastId;
            live = new Dictionary<int, long>(_live);
        }

        await _writer.Enqueue(db =>
        {
            var blocks = db.GetCollection(_blocksName);
            foreach (var owner in owners)
                WriteBlocks(blocks, owner);
            var segments = new BsonDocument();
            foreach (var (segment, count) in live)
                segments[segment.ToString(System.Globalization.CultureInfo.InvariantCulture)] = count;
            db.GetCollection(CheckpointsName).Upsert(new BsonDocument
            {
                ["_id"] = _name, ["segment"] = position.Segment, ["offset"] = position.Offset, ["lastId"] = lastId, ["live"] = segments,
            });
            return true;
        }, background: true).ConfigureAwait(false);

        var deletable = new List<int>();
        lock (_gate)
        {
            foreach (var owner in owners)
            {
                var state = owner.State;
                if (owner.Tail.Length > 0)
                    _tailCount -= RemoveThrough(state.Tail, owner.Tail[^1].Id);
                foreach (var (id, location) in owner.Replaced)
                    if (state.Replaced.TryGetValue(id, out var current) && current == location)
                        state.Replaced.Remove(id);
                state.IndexedDeletedThrough = Math.Max(state.IndexedDeletedThrough, owner.DeletedThrough);
                if (!state.HasUnindexed)
                    _unindexed.Remove(state);
            }
            _checkpoint = position;
            foreach (var segment in _segments.Existing())
            {
                // Everything in a segment before the checkpoint is indexed; with no live record left nothing needs it.
                if (segment < position.Segment && _live.GetValueOrDefault(segment) <= 0)
                {
                    _live.Remove(segment);
                    deletable.Add(segment);
                }
            }
        }
        foreach (var segment in deletable)
            _segments.Delete(segment);
    }

    private static void WriteBlocks(ILiteCollection<BsonDocument> blocks, OwnerSnapshot owner)
    {
        // Deletions first: blocks wholly deleted go, the one the watermark cuts through is rewritten without its head.
        var deleted = owner.Deleting ? blocks.Query().Where(IndexBlock.Range(owner.Owner, owner.DeletedThrough)).OrderBy("_id").ToList() : [];
        foreach (var document in deleted)
        {
            var block = IndexBlock.FromDocument(document);
            blocks.Delete(document["_id"]);
            block.Entries.RemoveAll(e => e.Id <= owner.DeletedThrough);
            if (block.Entries.Count > 0)
                blocks.Insert(block.ToDocument());
        }

        // Replaced payloads of entries already in blocks are repointed there; the rest are in the tail written below.
        var replaced = owner.Replaced.ToDictionary(r => r.Key, r => r.Value);
        var firstInTail = owner.Tail.Length > 0 ? owner.Tail[0].Id : long.MaxValue;
        foreach (var (id, location) in owner.Replaced)
        {
            if (id >= firstInTail || id <= owner.DeletedThrough)
                continue;
            var document = blocks.Query().Where(IndexBlock.Range(owner.Owner, id)).OrderByDescending("_id").Limit(1).FirstOrDefault();
            if (document is null)
                continue;
            var block = IndexBlock.FromDocument(document);
            var index = block.Entries.FindIndex(e => e.Id == id);
            if (index < 0)
                continue;
            block.Entries[index] = block.Entries[index] with { Location = location };
            blocks.Update(block.ToDocument());
        }

        if (owner.Tail.Length == 0)
            return;
        // New entries join the owner's last block while it is small, then fill new ones.
        var entries = new List<LogEntry>(owner.Tail.Length);
        foreach (var entry in owner.Tail)
            entries.Add(replaced.TryGetValue(entry.Id, out var location) ? entry with { Location = location } : entry);
        var next = 0;
        var lastDocument = blocks.Query().Where(IndexBlock.Range(owner.Owner)).OrderByDescending("_id").Limit(1).FirstOrDefault();
        if (lastDocument is not null && IndexBlock.CountOf(lastDocument) < IndexBlock.MergeBelow)
        {
            var last = IndexBlock.FromDocument(lastDocument);
            next = Math.Min(entries.Count, IndexBlock.Capacity - last.Entries.Count);
            last.Entries.AddRange(entries.GetRange(0, next));
            blocks.Update(last.ToDocument());
        }
        while (next < entries.Count)
        {
            var take = Math.Min(IndexBlock.Capacity, entries.Count - next);
            blocks.Insert(new IndexBlock(owner.Owner, entries.GetRange(next, take)).ToDocument());
            next += take;
        }
    }
}
