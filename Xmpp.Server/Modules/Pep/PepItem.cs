using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Pep;

/// One published item: its id, payload, when and by whom it was published. Immutable; never mutate Payload.
public sealed record PepItem(string Id, Element Payload, DateTimeOffset Published, string Publisher)
{
    private int _size = -1;

    /// The payload's serialized size in bytes, what counts toward Pep:MaxBytesPerAccount (measured once).
    public int Size => _size >= 0 ? _size : _size = ElementWriter.ToBytes(Payload).Length;

    public bool IsExpired(PepNodeConfig config, DateTimeOffset now) =>
        config.ItemExpireSeconds > 0 && Published.AddSeconds(config.ItemExpireSeconds) <= now;
}
