using System.Buffers;
using LiteDB;

namespace Xmpp.Storage.Log;

internal sealed partial class LogArchiveStore
{
    private const int ImportBatch = 4096;

    // The last id the LiteDB archive gave out before this store replaced it ("sequences" collection).
    private long _replacedSequence;

    // Loads the index's checkpoint and replays every record the log holds after it into memory. The last record of a
    // segment may be torn (the process died inside a write, before its fsync returned, so nobody was told it was stored):
    // the segment is cut at the end of the last whole record.
    private void Recover()
    {
        var (legacy, sequence) = _writer.Enqueue(db =>
            (db.CollectionExists(CheckpointsName) ? db.GetCollection(CheckpointsName).FindById(_name) : null,
             db.GetCollection("sequences").FindById(_name))).GetAwaiter().GetResult();
        if (legacy is not null)
        {
            if (_index.Checkpoint is null)
                MigrateIndex(legacy);
            // The index file is committed, so the LiteDB copy (all of it, or left over from a migration cut short
            // after its commit) goes.
            _writer.Enqueue(db =>
            {
                if (db.CollectionExists(LegacyBlocksName))
                    db.GetCollection(LegacyBlocksName).DeleteAll();
                return db.GetCollection(CheckpointsName).Delete(_name);
            }).GetAwaiter().GetResult();
        }
        if (_index.Checkpoint is { } checkpoint)
        {
            _checkpoint = checkpoint.Position;
            _lastId = _appliedLastId = checkpoint.LastId;
            foreach (var (segment, count) in checkpoint.Live)
                _live[segment] = count;
        }
        else
        {
            _checkpoint = (1, 0);
        }
        _replacedSequence = sequence?["last"].AsInt64 ?? 0;

        var existing = _segments.Existing();
        foreach (var segment in existing)
            if (segment >= _checkpoint.Segment)
                Replay(segment, segment == _checkpoint.Segment ? _checkpoint.Offset : 0, existing[^1]);
        _segments.OpenForAppend(Math.Max(existing.Count > 0 ? existing[^1] : 0, _checkpoint.Segment));
        _applied = (_segments.ActiveSegment, _segments.ActiveLength);
        _appliedLastId = Math.Max(_appliedLastId, _lastId);
    }

    // Whether a record that decodes starts right after the damaged one (its length field intact, its body not).
    private static bool WholeRecordFollows(FileStream stream, long damaged)
    {
        var header = new byte[LogRecord.HeaderLength];
        stream.Position = damaged;
        if (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) != header.Length)
            return false;
        var body = LogRecord.BodyLength(header);
        if (body < 0)
            return false;
        var next = damaged + LogRecord.HeaderLength + body;
        stream.Position = next;
        if (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) != header.Length
            || LogRecord.BodyLength(header) is var length && length < 0 || next + LogRecord.HeaderLength + length > stream.Length)
            return false;
        var framed = new byte[LogRecord.HeaderLength + length];
        header.CopyTo(framed, 0);
        stream.ReadExactly(framed, LogRecord.HeaderLength, length);
        return LogRecord.TryDecode(framed, out _);
    }

    private void Replay(int segment, long offset, int newest)
    {
        var header = new byte[LogRecord.HeaderLength];
        long end;
        using (var stream = new FileStream(_segments.PathOf(segment), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16))
        {
            if (offset >= stream.Length)
                return;
            stream.Position = end = offset;
            while (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) == header.Length)
            {
                var body = LogRecord.BodyLength(header);
                if (body < 0)
                    break;
                var framed = ArrayPool<byte>.Shared.Rent(LogRecord.HeaderLength + body);
                try
                {
                    header.CopyTo(framed, 0);
                    if (stream.ReadAtLeast(framed.AsSpan(LogRecord.HeaderLength, body), body, throwOnEndOfStream: false) != body
                        || !LogRecord.TryDecode(framed.AsSpan(0, LogRecord.HeaderLength + body), out var record))
                        break;
                    Reapply(record, new LogLocation(segment, end, LogRecord.HeaderLength + body));
                    end += LogRecord.HeaderLength + body;
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(framed);
                }
            }
            if (end == stream.Length)
                return;
            // Only the newest segment can end in a torn write: an older one was fsynced whole before the next was
            // begun (SegmentFiles.Roll). And a damaged record followed by a whole one is damage in the middle, not a
            // write cut short. Cutting there would drop records that were acknowledged, so the start stops instead.
            if (segment != newest || WholeRecordFollows(stream, end))
                throw new StorageDamagedException(_segments.PathOf(segment),
                    $"the record at byte {end} of {stream.Length} does not pass its checksum, and whole records follow it");
            _stall?.Report($"Archive {_name}: {_segments.PathOf(segment)} ended in a record cut short by a crash (bytes {end} to {stream.Length}, never acknowledged); the segment was cut back to byte {end}");
        }
        _segments.Truncate(segment, end);
    }

    // A record read back from the log has the effect it had when it was written.
    private void Reapply(LogRecord record, LogLocation location)
    {
        var write = new LogWrite(record.Kind, record.Owner, record.Id, record.Stamp, record.With, record.StanzaId, default)
        {
            Location = location,
            Writes = true,
        };
        switch (record.Kind)
        {
            case LogRecordKind.Append:
                _lastId = Math.Max(_lastId, record.Id);
                break;
            case LogRecordKind.Replace:
                if (Find(record.Owner, record.Id) is not { } current)
                    return;
                write.Previous = current.Location;
                break;
            case LogRecordKind.DeleteThrough:
                write.DeletedSegments = DeletedSegments(record.Owner, record.Id);
                break;
        }
        lock (_gate)
            Apply(write);
    }

    // The LiteDB archive this store replaces ("archive_<name>", written by LiteDbArchiveStore) is copied into the log
    // in id order with its ids, stamps and stanza ids, then emptied. Ids already in the log were copied by an open that
    // stopped half-way; the collection is emptied only once all of it is durable in the log.
    private void Migrate()
    {
        var name = "archive_" + _name;
        if (Db.CollectionExists(name) && Db.GetCollection(name).Query().Limit(1).FirstOrDefault() is not null)
            Import(name);
        // Ids stay above those the LiteDB archive gave out, even deleted ones; only now, as until the import is done
        // the log's own last id says how far it got.
        _lastId = Math.Max(_lastId, _replacedSequence);
        _appliedLastId = Math.Max(_appliedLastId, _lastId);
    }

    private void Import(string name)
    {
        var records = Db.GetCollection(name);
        var after = _lastId;
        while (true)
        {
            var batch = new List<LogWrite>(ImportBatch);
            foreach (var document in records.Find(LiteDB.Query.GT("_id", after), 0, ImportBatch))
            {
                var stanzaId = document["stanzaId"];
                batch.Add(new LogWrite(LogRecordKind.Append, document["owner"].AsString, document["_id"].AsInt64,
                    document["stamp"].AsInt64, document["with"].AsString, stanzaId.IsNull ? null : stanzaId.AsString, document["payload"].AsBinary));
            }
            if (batch.Count == 0)
                break;
            Interlocked.Add(ref _pending, batch.Count);
            Process(batch);
            after = batch[^1].Id;
            if (_tailCount >= IndexBatch)
                IndexPass();
        }
        IndexPass();
        // Emptied rather than dropped: LiteDB drops a collection only outside a transaction, and the writer is inside one.
        _writer.Enqueue(db => db.GetCollection(name).DeleteAll()).GetAwaiter().GetResult();
    }

    // Earlier versions kept the index blocks in LiteDB ("archive_<name>_index", checkpoint in "archive_logs"). They are
    // copied into the index file in one commit with their checkpoint, so an open that stops half-way copies them again.
    private const string CheckpointsName = "archive_logs";

    private string LegacyBlocksName => "archive_" + _name + "_index";

    private void MigrateIndex(BsonDocument legacy)
    {
        var pass = new IndexFile.Pass();
        _writer.Enqueue(db =>
        {
            if (db.CollectionExists(LegacyBlocksName))
                foreach (var document in db.GetCollection(LegacyBlocksName).FindAll())
                {
                    var (owner, entries) = IndexBlock.FromDocument(document);
                    pass.Put(owner, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(entries));
                }
            return true;
        }).GetAwaiter().GetResult();
        var live = new Dictionary<int, long>();
        foreach (var (segment, count) in legacy["live"].AsDocument)
            live[int.Parse(segment, System.Globalization.CultureInfo.InvariantCulture)] = count.AsInt64;
        _index.Commit(pass, new IndexCheckpoint((legacy["segment"].AsInt32, legacy["offset"].AsInt64), legacy["lastId"].AsInt64, live));
    }
}
