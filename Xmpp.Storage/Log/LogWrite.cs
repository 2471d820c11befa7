namespace Xmpp.Storage.Log;

// One write queued for an archive log's writer, and what the writer worked out for it: the record it wrote (if any),
// where, and what that changes in the index. Result is the new id (append), 1 or 0 (replace), the number deleted.
internal sealed class LogWrite
{
    // DeleteAll deletes through the newest id at the moment the writer takes it.
    public const long Everything = long.MaxValue;

    // Continuations must not run on the writer thread: they would delay the next group.
    private readonly TaskCompletionSource<long> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public LogWrite(LogRecordKind kind, string owner, long id, long stamp, string with, string? stanzaId, ReadOnlyMemory<byte> payload)
    {
        Kind = kind;
        Owner = owner;
        Id = id;
        Stamp = stamp;
        With = with;
        StanzaId = stanzaId;
        Payload = payload;
    }

    public LogRecordKind Kind { get; }

    public string Owner { get; }

    // Append: 0 for a new id, or the id of a record imported from the LiteDB archive. Replace: the record.
    // DeleteThrough: the last id deleted.
    public long Id { get; set; }

    public long Stamp { get; set; }

    public string With { get; }

    public string? StanzaId { get; }

    public ReadOnlyMemory<byte> Payload { get; }

    // Came through the queue (not an import at open), so flushes count it (FlushWaiters).
    public bool Queued { get; set; }

    // Set by the writer: whether a record goes to the log, and where it went.
    public bool Writes { get; set; }

    public LogLocation Location { get; set; }

    // Replace: where the record's current payload was. DeleteThrough: the segment of every record it deletes.
    public LogLocation Previous { get; set; }

    public List<int>? DeletedSegments { get; set; }

    public long Result { get; set; }

    public Task<long> Task => _done.Task;

    public LogRecord ToRecord() => new(Kind, Id, Stamp, Owner, With, StanzaId, Payload);

    // with: the peer string to keep in the index (one shared by a run of records with the same peer).
    public LogEntry ToEntry(string with) => new(Id, Stamp, with, StanzaId, Location);

    public bool Complete() => _done.TrySetResult(Result);

    public bool Fail(Exception error) => _done.TrySetException(error);
}
