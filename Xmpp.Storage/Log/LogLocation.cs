namespace Xmpp.Storage.Log;

// Where one record lies in a collection's log: segment file number, byte offset of its header, length with header.
internal readonly record struct LogLocation(int Segment, long Offset, int Length)
{
    public long End => Offset + Length;
}
