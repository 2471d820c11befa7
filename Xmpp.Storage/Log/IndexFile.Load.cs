using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;

namespace Xmpp.Storage.Log;

internal sealed partial class IndexFile
{
    private sealed record Loaded(Dictionary<string, List<BlockRef>> Blocks, IndexCheckpoint? Checkpoint, long CommittedEnd);

    internal readonly record struct Change(string Owner, bool Put, BlockRef Block);

    // The newest generation with a commit (or else the newest readable one, or a new first one), every other file
    // removed: older generations were replaced by a finished compaction, newer ones are compactions cut short.
    private (int Generation, Loaded? Loaded) LoadNewest()
    {
        var generations = Directory.EnumerateFiles(_directory, Prefix + "*" + Extension)
            .Select(path => int.TryParse(Path.GetFileNameWithoutExtension(path)[Prefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0)
            .Where(n => n > 0)
            .OrderDescending()
            .ToList();
        (int Generation, Loaded? Loaded) chosen = (0, null);
        foreach (var generation in generations)
        {
            var loaded = TryLoad(PathOf(generation));
            if (loaded is not null && (loaded.Checkpoint is not null || chosen.Loaded is null))
                chosen = (generation, loaded);
            if (loaded?.Checkpoint is not null)
                break;
        }
        if (chosen.Loaded is null)
            chosen.Generation = generations.Count > 0 ? generations[0] + 1 : 1;
        foreach (var generation in generations)
            if (generation != chosen.Generation)
                File.Delete(PathOf(generation));
        return chosen;
    }

    // Reads a whole index file; null when it is not one. Stops at the first record that is cut short or damaged.
    private static Loaded? TryLoad(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        var magic = new byte[MagicLength];
        if (stream.ReadAtLeast(magic, MagicLength, throwOnEndOfStream: false) != MagicLength || !magic.AsSpan().SequenceEqual(Magic))
            return null;
        var blocks = new Dictionary<string, List<BlockRef>>(StringComparer.Ordinal);
        var staged = new List<Change>();
        IndexCheckpoint? checkpoint = null;
        long at = MagicLength, committedEnd = MagicLength;
        var frame = new byte[FrameLength];
        while (stream.ReadAtLeast(frame, FrameLength, throwOnEndOfStream: false) == FrameLength)
        {
            var length = BinaryPrimitives.ReadUInt32LittleEndian(frame);
            if (length is 0 or > LogRecord.MaxBodyLength)
                break;
            var framed = ArrayPool<byte>.Shared.Rent(FrameLength + (int)length);
            try
            {
                frame.CopyTo(framed, 0);
                var span = framed.AsSpan(0, FrameLength + (int)length);
                if (stream.ReadAtLeast(span[FrameLength..], (int)length, throwOnEndOfStream: false) != length || !TryBody(span, out var body))
                    break;
                if (body[0] == CommitKind)
                {
                    if (!TryReadCommit(body, out checkpoint))
                        break;
                    foreach (var change in staged)
                        Apply(blocks, change);
                    staged.Clear();
                    committedEnd = at + span.Length;
                }
                else if (!TryReadChange(body, at, span.Length, out var change))
                {
                    break;
                }
                else
                {
                    staged.Add(change);
                }
                at += span.Length;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(framed);
            }
        }
        return new Loaded(blocks, checkpoint, committedEnd);
    }

    private static bool TryReadChange(ReadOnlySpan<byte> body, long offset, int length, out Change change)
    {
        change = default;
        int at;
        long first, last = 0, lastStamp = 0;
        var count = 0;
        if (body[0] == PutKind && body.Length >= PutFixedLength)
        {
            first = BinaryPrimitives.ReadInt64LittleEndian(body[1..]);
            last = BinaryPrimitives.ReadInt64LittleEndian(body[9..]);
            count = BinaryPrimitives.ReadInt32LittleEndian(body[17..]);
            lastStamp = BinaryPrimitives.ReadInt64LittleEndian(body[21..]);
            at = PutFixedLength;
        }
        else if (body[0] == DropKind && body.Length >= 9)
        {
            first = BinaryPrimitives.ReadInt64LittleEndian(body[1..]);
            at = 9;
        }
        else
        {
            return false;
        }
        if (!Utf8Field.TryRead(body, ref at, out var owner) || owner is null)
            return false;
        change = new Change(owner, body[0] == PutKind, new BlockRef(first, last, count, lastStamp, offset, length));
        return true;
    }

    private static bool TryReadCommit(ReadOnlySpan<byte> body, out IndexCheckpoint? checkpoint)
    {
        checkpoint = null;
        if (body.Length < 25)
            return false;
        var n = BinaryPrimitives.ReadInt32LittleEndian(body[21..]);
        if (n < 0 || body.Length != 25 + n * 12)
            return false;
        var live = new Dictionary<int, long>(n);
        for (var i = 0; i < n; i++)
            live[BinaryPrimitives.ReadInt32LittleEndian(body[(25 + i * 12)..])] = BinaryPrimitives.ReadInt64LittleEndian(body[(29 + i * 12)..]);
        checkpoint = new IndexCheckpoint((BinaryPrimitives.ReadInt32LittleEndian(body[1..]), BinaryPrimitives.ReadInt64LittleEndian(body[5..])),
            BinaryPrimitives.ReadInt64LittleEndian(body[13..]), live);
        return true;
    }

    // A committed change into the directory: a put replaces the owner's block with its first id, a drop removes it.
    // Returns the length of the block it replaced or removed (0: none), so the writer can keep count of live bytes.
    private static int Apply(Dictionary<string, List<BlockRef>> blocks, Change change)
    {
        if (!blocks.TryGetValue(change.Owner, out var list))
        {
            if (!change.Put)
                return 0;
            blocks[change.Owner] = list = [];
        }
        var index = FindFirst(list, change.Block.FirstId);
        var previous = index >= 0 ? list[index].Length : 0;
        if (change.Put)
        {
            if (index >= 0)
                list[index] = change.Block;
            else
                list.Insert(~index, change.Block);
        }
        else if (index >= 0)
        {
            list.RemoveAt(index);
            if (list.Count == 0)
                blocks.Remove(change.Owner);
        }
        return previous;
    }

    // List.BinarySearch semantics over the blocks' first ids.
    private static int FindFirst(List<BlockRef> list, long firstId)
    {
        int low = 0, high = list.Count - 1;
        while (low <= high)
        {
            var middle = (low + high) >>> 1;
            var cmp = list[middle].FirstId.CompareTo(firstId);
            if (cmp == 0)
                return middle;
            if (cmp < 0)
                low = middle + 1;
            else
                high = middle - 1;
        }
        return ~low;
    }
}
