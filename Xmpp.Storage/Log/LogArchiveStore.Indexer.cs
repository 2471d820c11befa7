using System.Runtime.InteropServices;

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
    // Held by a pass and by CopyTo: a copy sees the index file ending at a commit, and no segment removed under it.
    private readonly Lock _passGate = new();

    private void IndexPass()
    {
        lock (_passGate)
            IndexPassHeld();
    }

    // A copy of the log as a crash at this moment would leave it (xmppd backup): with the indexer held, the index files
    // are copied first, then the segments oldest first. Only the newest can still grow while it is copied; a record cut
    // short at its end is cut off on the next open, as after a crash.
    internal void CopyTo(string directory)
    {
        Directory.CreateDirectory(directory);
        lock (_passGate)
        {
            foreach (var path in Directory.EnumerateFiles(_segments.Directory, "*.idx"))
                BackupFiles.Copy(path, Path.Combine(directory, Path.GetFileName(path)));
            foreach (var segment in _segments.Existing())
            {
                var path = _segments.PathOf(segment);
                BackupFiles.Copy(path, Path.Combine(directory, Path.GetFileName(path)));
            }
        }
    }

    internal string Name => _name;

    private void IndexPassHeld()
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

    // The owner's changes as puts and drops, touching only the blocks that change: the first one a deletion cuts (those
    // wholly deleted are dropped), those holding a replaced entry, and the last one while new entries join it. An
    // owner's archive of a million messages is two thousand blocks, and a pass comes every second or so under load.
    private void WriteBlocks(IndexFile.Pass pass, OwnerSnapshot owner)
    {
        var (file, stored) = _index.IndexerView(owner.Owner);
        // Entries of stored blocks this pass changes, by the block's position in stored.
        Dictionary<int, List<LogEntry>>? changed = null;
        List<LogEntry> Load(int block)
        {
            changed ??= [];
            if (!changed.TryGetValue(block, out var entries))
                changed[block] = entries = IndexFile.ReadBlock(file, stored[block]);
            return entries;
        }

        // Deletions first: blocks wholly deleted go, the one the watermark cuts through loses its head.
        var first = 0;
        if (owner.Deleting)
        {
            while (first < stored.Count && stored[first].LastId <= owner.DeletedThrough)
                pass.Drop(owner.Owner, stored[first++].FirstId);
            if (first < stored.Count && stored[first].FirstId <= owner.DeletedThrough)
            {
                var deletedThrough = owner.DeletedThrough;
                Load(first).RemoveAll(e => e.Id <= deletedThrough);
                pass.Drop(owner.Owner, stored[first].FirstId);
            }
        }

        // Replaced payloads of entries already in blocks are repointed there; those in the tail as it is written below.
        var firstInTail = owner.Tail.Length > 0 ? owner.Tail[0].Id : long.MaxValue;
        Dictionary<long, LogLocation>? replacedInTail = null;
        foreach (var (id, location) in owner.Replaced)
        {
            if (id >= firstInTail)
            {
                (replacedInTail ??= [])[id] = location;
                continue;
            }
            if (id <= owner.DeletedThrough || FindBlock(stored, first, id) is not (>= 0 and var block))
                continue;
            var entries = Load(block);
            var index = entries.FindIndex(e => e.Id == id);
            if (index >= 0)
                entries[index] = entries[index] with { Location = location };
        }

        ReadOnlySpan<LogEntry> tail = owner.Tail;
        if (replacedInTail is not null)
        {
            var copy = owner.Tail.ToArray();
            for (var i = 0; i < copy.Length; i++)
                if (replacedInTail.TryGetValue(copy[i].Id, out var location))
                    copy[i] = copy[i] with { Location = location };
            tail = copy;
        }

        // New entries join the owner's last block while it is small, then fill new ones.
        var last = stored.Count - 1;
        if (tail.Length > 0 && last >= first)
        {
            var count = changed?.TryGetValue(last, out var lastEntries) == true ? lastEntries!.Count : stored[last].Count;
            if (count < IndexBlock.MergeBelow)
            {
                var take = Math.Min(tail.Length, IndexBlock.Capacity - count);
                Load(last).AddRange(tail[..take]);
                tail = tail[take..];
            }
        }

        // A put replaces the stored block with its first id (a cut block was dropped above: its first id changed).
        if (changed is not null)
            foreach (var (_, entries) in changed)
                pass.Put(owner.Owner, CollectionsMarshal.AsSpan(entries));
        while (tail.Length > 0)
        {
            var take = Math.Min(IndexBlock.Capacity, tail.Length);
            pass.Put(owner.Owner, tail[..take]);
            tail = tail[take..];
        }
    }

    // The position in blocks (from first on) of the block whose id range holds id, or -1.
    private static int FindBlock(IReadOnlyList<BlockRef> blocks, int first, long id)
    {
        int lo = first, hi = blocks.Count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (blocks[mid].LastId < id) lo = mid + 1;
            else if (blocks[mid].FirstId > id) hi = mid - 1;
            else return mid;
        }
        return -1;
    }
}
