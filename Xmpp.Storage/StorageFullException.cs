namespace Xmpp.Storage;

// A write refused without being tried because the disk has been full for a while (see LiteDbWriter.Refuses): the
// server answers the request it belongs to with resource-constraint, type wait (RFC 6120 §8.3.3.18), so the client
// tries again later rather than wait behind writes that cannot be stored yet.
public sealed class StorageFullException(string store)
    : IOException($"Storage {store}: the disk is full; the write was refused, try again later")
{
    public string Store { get; } = store;
}
