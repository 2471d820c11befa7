namespace Xmpp.Storage;

// One archived stanza: With is the peer's bare JID, Payload the serialized stanza in UTF-8.
public sealed record ArchiveRecord(long Id, string Owner, DateTimeOffset Stamp, string With, byte[] Payload, string? StanzaId = null);
