using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;

namespace Xmpp.Storage.Log;

internal sealed partial class IndexFile
{
    // The puts and drops of one index pass, framed in memory until Commit writes them. One pass at a time, by the
    // indexer; the blocks it writes are invisible to readers until then. The indexer keeps one for every pass: its
    // buffer grows to the size of a large pass (hundreds of KB, the large object heap) once, not on every pass, as
    // a new one did with a full garbage collection about every second under load.
    public sealed class Pass
    {
        internal readonly ArrayBufferWriter<byte> Buffer = new(1 << 16);
        internal readonly List<Change> Changes = [];

        // Empty again after a commit (or a failed one), its buffer kept.
        public void Reset()
        {
            Buffer.ResetWrittenCount();
            Changes.Clear();
        }

        public void Put(string owner, ReadOnlySpan<LogEntry> entries)
        {
            var ownerLength = Utf8Field.Length(owner);
            var bodyLength = PutFixedLength + ownerLength + IndexBlock.PackedLength(entries);
            var offset = Buffer.WrittenCount;
            var body = Frame(bodyLength);
            body[0] = PutKind;
            BinaryPrimitives.WriteInt64LittleEndian(body[1..], entries[0].Id);
            BinaryPrimitives.WriteInt64LittleEndian(body[9..], entries[^1].Id);
            BinaryPrimitives.WriteInt32LittleEndian(body[17..], entries.Length);
            BinaryPrimitives.WriteInt64LittleEndian(body[21..], entries[^1].Stamp);
            Utf8Field.Write(body[PutFixedLength..], owner);
            IndexBlock.Pack(entries, body[(PutFixedLength + ownerLength)..]);
            Seal(bodyLength);
            Changes.Add(new Change(owner, true, new BlockRef(entries[0].Id, entries[^1].Id, entries.Length, entries[^1].Stamp, offset, FrameLength + bodyLength)));
        }

        public void Drop(string owner, long firstId)
        {
            var bodyLength = 9 + Utf8Field.Length(owner);
            var offset = Buffer.WrittenCount;
            var body = Frame(bodyLength);
            body[0] = DropKind;
            BinaryPrimitives.WriteInt64LittleEndian(body[1..], firstId);
            Utf8Field.Write(body[9..], owner);
            Seal(bodyLength);
            Changes.Add(new Change(owner, false, new BlockRef(firstId, 0, 0, 0, offset, FrameLength + bodyLength)));
        }

        internal void Commit(IndexCheckpoint checkpoint)
        {
            var bodyLength = 25 + checkpoint.Live.Count * 12;
            var body = Frame(bodyLength);
            body[0] = CommitKind;
            BinaryPrimitives.WriteInt32LittleEndian(body[1..], checkpoint.Position.Segment);
            BinaryPrimitives.WriteInt64LittleEndian(body[5..], checkpoint.Position.Offset);
            BinaryPrimitives.WriteInt64LittleEndian(body[13..], checkpoint.LastId);
            BinaryPrimitives.WriteInt32LittleEndian(body[21..], checkpoint.Live.Count);
            var at = 25;
            foreach (var (segment, count) in checkpoint.Live)
            {
                BinaryPrimitives.WriteInt32LittleEndian(body[at..], segment);
                BinaryPrimitives.WriteInt64LittleEndian(body[(at + 4)..], count);
                at += 12;
            }
            Seal(bodyLength);
        }

        // The body of a record about to be written; Seal frames it once it is filled in.
        private Span<byte> Frame(int bodyLength) => Buffer.GetSpan(FrameLength + bodyLength).Slice(FrameLength, bodyLength);

        private void Seal(int bodyLength)
        {
            var framed = Buffer.GetSpan(FrameLength + bodyLength)[..(FrameLength + bodyLength)];
            BinaryPrimitives.WriteUInt32LittleEndian(framed, (uint)bodyLength);
            BinaryPrimitives.WriteUInt32LittleEndian(framed[4..], Crc32.HashToUInt32(framed[FrameLength..]));
            Buffer.Advance(FrameLength + bodyLength);
        }
    }

    // Appends the pass with its commit, fsyncs, and only then shows its blocks to readers. Then compacts if due.
    public void Commit(Pass pass, IndexCheckpoint checkpoint)
    {
        pass.Commit(checkpoint);
        var start = _length;
        try
        {
            RandomAccess.Write(_file.SafeFileHandle, pass.Buffer.WrittenSpan, start);
            _file.Flush(flushToDisk: true);
        }
        catch
        {
            // Whatever part of the pass reached the file is cut off, so the next pass starts at the same place and
            // nothing stale follows its commit.
            TryTruncate(start);
            throw;
        }
        lock (_lock)
        {
            foreach (var change in pass.Changes)
            {
                var block = change.Block with { Offset = start + change.Block.Offset };
                _liveBytes -= Apply(_blocks, change with { Block = block });
                if (change.Put)
                    _liveBytes += block.Length;
            }
            _length = start + pass.Buffer.WrittenCount;
            Checkpoint = checkpoint;
        }
        if (_length >= _compactBytes && _length - MagicLength - _liveBytes > _liveBytes)
        {
            try
            {
                Compact();
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                // The pass is committed whatever happens here; the file stays as it is and the next commit tries again.
            }
        }
    }

    private void TryTruncate(long length)
    {
        try
        {
            _file.SetLength(length);
        }
        catch (IOException)
        {
            // The next open cuts off what follows the last commit anyway.
        }
    }

    // Copies every live block into the next generation with the latest commit; readers holding the old file get
    // ObjectDisposedException once it is closed and read again from a new snapshot.
    private void Compact()
    {
        var generation = _generation + 1;
        var path = PathOf(generation);
        var blocks = new Dictionary<string, List<BlockRef>>(_blocks.Count, StringComparer.Ordinal);
        long length;
        try
        {
            using var output = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1 << 20);
            output.Write(Magic);
            long at = MagicLength;
            var buffer = new byte[64 * 1024];
            // Only this thread changes _blocks, so it is read here without the lock.
            foreach (var (owner, list) in _blocks)
            {
                var moved = new List<BlockRef>(list.Count);
                foreach (var block in list)
                {
                    if (buffer.Length < block.Length)
                        buffer = new byte[block.Length];
                    var framed = buffer.AsSpan(0, block.Length);
                    if (RandomAccess.Read(_file.SafeFileHandle, framed, block.Offset) != block.Length || !TryBody(framed, out _))
                        throw new InvalidDataException($"The archive index block at {block.Offset} of {_file.Name} is damaged.");
                    output.Write(framed);
                    moved.Add(block with { Offset = at });
                    at += block.Length;
                }
                blocks[owner] = moved;
            }
            var commit = new Pass();
            commit.Commit(Checkpoint!);
            output.Write(commit.Buffer.WrittenSpan);
            output.Flush(flushToDisk: true);
            length = at + commit.Buffer.WrittenCount;
        }
        catch
        {
            File.Delete(path);
            throw;
        }
        var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 0) { Position = length };
        FileStream old;
        lock (_lock)
        {
            old = _file;
            _file = file;
            _blocks = blocks;
            _length = length;
            _generation = generation;
        }
        old.Dispose();
        File.Delete(PathOf(generation - 1));
    }
}
