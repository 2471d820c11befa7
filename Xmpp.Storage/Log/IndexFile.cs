using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;

namespace Xmpp.Storage.Log;

// The index of one archive log: blocks of entries per owner (IndexBlock) in an append-only file beside the segments,
// <directory>/index-<generation>.idx. LiteDB held these blocks before, and fsynced its own log after every 8 KiB page
// written: an index pass of a few MB cost hundreds of fsyncs, the largest part of what archiving cost a message
// (bench/profiles/2026-12-02-archive-cpu.md). Here a pass is one append and one fsync.
//
// The file is an 8-byte magic, then records framed as the log's are (u32 body length, u32 CRC-32 of the body, body):
//   put    = u8 1 | i64 first id | i64 last id | i32 count | i64 last stamp | str owner | packed entries
//            (a block; it replaces the owner's block with the same first id, if any)
//   drop   = u8 2 | i64 first id | str owner (the owner's block with that first id is gone)
//   commit = u8 3 | i32 segment | i64 offset | i64 last id | i32 n | n x (i32 segment, i64 live records)
// A pass writes its puts and drops, then a commit with the log position it covers; only committed records count, so a
// pass cut short by a crash is cut off on the next open and its entries replayed from the log. Which blocks exist, and
// where, is kept in memory (one BlockRef per block); queries read the blocks themselves at those offsets.
//
// Superseded blocks stay in the file until it is compacted: once the file passes compactBytes and holds more dead than
// live bytes, the live blocks are copied into the next generation with the latest commit, synced, and the old file is
// deleted. On open the newest generation with a commit wins; a newer one without (a compaction cut short) is removed.
internal sealed partial class IndexFile : IDisposable
{
    public const long DefaultCompactBytes = 16L * 1024 * 1024;

    private const string Prefix = "index-";
    private const string Extension = ".idx";
    private const int MagicLength = 8;
    private const int FrameLength = 8;
    private const byte PutKind = 1, DropKind = 2, CommitKind = 3;
    private const int PutFixedLength = 1 + 8 + 8 + 4 + 8;
    private static ReadOnlySpan<byte> Magic => "XMPPIDX1"u8;

    private readonly string _directory;
    private readonly long _compactBytes;

    // Guards the fields below against the indexer swapping them; readers hold it only to take a snapshot.
    private readonly Lock _lock = new();
    private Dictionary<string, List<BlockRef>> _blocks;
    private FileStream _file;
    private int _generation;
    private long _length;
    private long _liveBytes;

    public IndexFile(string directory, long compactBytes = DefaultCompactBytes)
    {
        _directory = directory;
        _compactBytes = compactBytes;
        Directory.CreateDirectory(directory);
        (_generation, var loaded) = LoadNewest();
        _blocks = loaded?.Blocks ?? new(StringComparer.Ordinal);
        Checkpoint = loaded?.Checkpoint;
        _file = new FileStream(PathOf(_generation), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 0);
        if (loaded is null)
        {
            _file.SetLength(0);
            _file.Write(Magic);
            _file.Flush(flushToDisk: true);
        }
        else if (_file.Length != loaded.CommittedEnd)
        {
            // A pass cut short by a crash: its records were never committed.
            _file.SetLength(loaded.CommittedEnd);
            _file.Flush(flushToDisk: true);
        }
        _length = _file.Length;
        _file.Position = _length;
        foreach (var blocks in _blocks.Values)
            foreach (var block in blocks)
                _liveBytes += block.Length;
    }

    // The last commit: null until the first pass of a new index.
    public IndexCheckpoint? Checkpoint { get; private set; }

    // The owner's blocks in id order and the file they are in; read them with ReadBlock.
    public (FileStream File, BlockRef[] Blocks) Snapshot(string owner)
    {
        lock (_lock)
            return (_file, _blocks.TryGetValue(owner, out var blocks) ? blocks.ToArray() : []);
    }

    // The indexer's view of the owner's blocks: no copy and no lock, because only the indexer's thread (or the store
    // while opening or closing, with no indexer running) changes the index. Valid until its next Commit.
    public (FileStream File, IReadOnlyList<BlockRef> Blocks) IndexerView(string owner) =>
        (_file, _blocks.TryGetValue(owner, out var blocks) ? blocks : []);

    // The owners with indexed blocks.
    public string[] Owners()
    {
        lock (_lock)
            return [.. _blocks.Keys];
    }

    // The stamp of the owner's newest indexed entry.
    public long? LastStamp(string owner)
    {
        lock (_lock)
            return _blocks.TryGetValue(owner, out var blocks) ? blocks[^1].LastStamp : null;
    }

    // The entries of a block. Throws ObjectDisposedException when a compaction replaced the file since the snapshot:
    // take a new one and read again.
    public static List<LogEntry> ReadBlock(FileStream file, BlockRef block)
    {
        var framed = ArrayPool<byte>.Shared.Rent(block.Length);
        try
        {
            var span = framed.AsSpan(0, block.Length);
            if (RandomAccess.Read(file.SafeFileHandle, span, block.Offset) != block.Length || !TryBody(span, out var body) || body[0] != PutKind)
                throw new InvalidDataException($"The archive index block at {block.Offset} of {file.Name} is damaged.");
            var at = PutFixedLength;
            var entries = new List<LogEntry>(block.Count);
            if (!Utf8Field.TryRead(body, ref at, out _) || !IndexBlock.TryUnpack(body[at..], entries) || entries.Count != block.Count)
                throw new InvalidDataException($"The archive index block at {block.Offset} of {file.Name} is damaged.");
            return entries;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(framed);
        }
    }

    public void Dispose()
    {
        lock (_lock)
            _file.Dispose();
    }

    private string PathOf(int generation) =>
        Path.Combine(_directory, Prefix + generation.ToString("D8", CultureInfo.InvariantCulture) + Extension);

    // The body of a whole framed record; false when it is cut short or its checksum does not hold.
    private static bool TryBody(ReadOnlySpan<byte> framed, out ReadOnlySpan<byte> body)
    {
        body = default;
        if (framed.Length < FrameLength + 1 || BinaryPrimitives.ReadUInt32LittleEndian(framed) != framed.Length - FrameLength)
            return false;
        body = framed[FrameLength..];
        return Crc32.HashToUInt32(body) == BinaryPrimitives.ReadUInt32LittleEndian(framed[4..]);
    }
}
