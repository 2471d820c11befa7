namespace Xmpp.Storage.Log;

// Where one index block lies in its index file, with what a query or the writer needs without reading it.
internal readonly record struct BlockRef(long FirstId, long LastId, int Count, long LastStamp, long Offset, int Length);
