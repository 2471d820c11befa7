namespace Xmpp.Storage.Log;

internal sealed partial class LogArchiveStore
{
    // A pass starts once this many entries wait in memory, or after IndexInterval with any waiting.
    private const int IndexBatch = 10_000;
    private static readonly TimeSpan IndexInterval = TimeSpan.FromSeconds(1);

    // Its own thread: a pass blocks on its write and fsync, which on a thread-pool thread would hold up the routing
    // work queued behind it on a small machine.
    private readonly Thread _indexerThread;
    private readonly TaskCompletionSource _indexerStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _wake = new(0);
    private int _wakeRequested;
    private (int Segment, long Offset) _checkpoint;
    private readonly IndexFile.Pass _pass = new();

    private void WakeIndexer()
    {
        if (Interlocked.Exchange(ref _wakeRequested, 1) == 0)
            _wake.Release();
    }

    private void IndexLoop()
    {
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                try
                {
                    _wake.Wait(IndexInterval, _stopping.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                Volatile.Write(ref _wakeRequested, 0);
                try
                {
                    IndexPass();
                }
                catch (Exception) when (!_stopping.IsCancellationRequested)
                {
                    // The entries stay in memory and in the log; the next pass tries again (the writer waits past MaxTail).
                }
                _indexed.Release();
            }
        }
        finally
        {
            _indexerStopped.TrySetResult();
        }
    }

    private sealed record OwnerSnapshot(
        string Owner, LogOwner State, LogEntry[] Tail, KeyValuePair<long, LogLocation>[] Replaced, long DeletedThrough, bool Deleting);

    // Moves what waits in memory into the index file, in one commit with the log position it covers and the live
    // records per segment; then drops it from memory and removes segment files nothing refers to any more.
    private void IndexPass()
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

        try
        {
            foreach (var owner in owners)
                WriteBlocks(_pass, owner);
            _index.Commit(_pass, new IndexCheckpoint(position, lastId, live));
        }
        finally
        {
            _pass.Reset();
        }

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

    // One of the owner's blocks during a pass: as the index has it, or its entries once the pass changes them.
    private sealed class Slot(BlockRef? stored, List<LogEntry>? entries = null)
    {
        public BlockRef? Stored { get; } = stored;

        public List<LogEntry>? Entries { get; private set; } = entries;

        public long FirstId => Entries is { } e ? e[0].Id : Stored!.Value.FirstId;

        public long LastId => Entries is { } e ? e[^1].Id : Stored!.Value.LastId;

        public int Count => Entries?.Count ?? Stored!.Value.Count;

        public List<LogEntry> Load(FileStream file) => Entries ??= IndexFile.ReadBlock(file, Stored!.Value);
    }

    // The owner's changes as puts and drops. Only this pass's thread writes the index, so its snapshot stays valid.
    private void WriteBlocks(IndexFile.Pass pass, OwnerSnapshot owner)
    {
        var (file, stored) = _index.Snapshot(owner.Owner);
        var slots = new List<Slot>(stored.Length + 1);
        foreach (var block in stored)
            slots.Add(new Slot(block));

        // Deletions first: blocks wholly deleted go, the one the watermark cuts through loses its head.
        if (owner.Deleting)
        {
            while (slots.Count > 0 && slots[0].LastId <= owner.DeletedThrough)
                slots.RemoveAt(0);
            if (slots.Count > 0 && slots[0].FirstId <= owner.DeletedThrough)
                slots[0].Load(file).RemoveAll(e => e.Id <= owner.DeletedThrough);
        }

        // Replaced payloads of entries already in blocks are repointed there; the rest are in the tail written below.
        var replaced = owner.Replaced.ToDictionary(r => r.Key, r => r.Value);
        var firstInTail = owner.Tail.Length > 0 ? owner.Tail[0].Id : long.MaxValue;
        foreach (var (id, location) in owner.Replaced)
        {
            if (id >= firstInTail || id <= owner.DeletedThrough || slots.Find(s => s.FirstId <= id && id <= s.LastId) is not { } slot)
                continue;
            var entries = slot.Load(file);
            var index = entries.FindIndex(e => e.Id == id);
            if (index >= 0)
                entries[index] = entries[index] with { Location = location };
        }

        // New entries join the owner's last block while it is small, then fill new ones.
        var next = 0;
        var tail = new List<LogEntry>(owner.Tail.Length);
        foreach (var entry in owner.Tail)
            tail.Add(replaced.TryGetValue(entry.Id, out var location) ? entry with { Location = location } : entry);
        if (tail.Count > 0 && slots.Count > 0 && slots[^1].Count < IndexBlock.MergeBelow)
        {
            next = Math.Min(tail.Count, IndexBlock.Capacity - slots[^1].Count);
            slots[^1].Load(file).AddRange(tail.GetRange(0, next));
        }
        while (next < tail.Count)
        {
            var take = Math.Min(IndexBlock.Capacity, tail.Count - next);
            slots.Add(new Slot(null, tail.GetRange(next, take)));
            next += take;
        }

        // A stored block whose first id no block has any more is dropped; a put replaces the one with its first id.
        foreach (var block in stored)
            if (!slots.Exists(s => s.FirstId == block.FirstId))
                pass.Drop(owner.Owner, block.FirstId);
        foreach (var slot in slots)
            if (slot.Entries is { } entries)
                pass.Put(owner.Owner, entries);
    }
}
