namespace Xmpp.Storage.Log;

// What the index keeps of one archived record: everything a query filters on, and where the payload lies.
internal readonly record struct LogEntry(long Id, long Stamp, string With, string? StanzaId, LogLocation Location);
