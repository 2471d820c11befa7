using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Text;

namespace Xmpp.Protocol.Xml;

/// <summary>Interns names by their UTF-8 bytes so that names seen again (element, attribute, prefix) reuse one string.</summary>
/// <remarks>
/// A table is used by one parser at a time. The shared <see cref="Common"/> table is filled once and then frozen,
/// so any number of parsers may read it concurrently. Tables are bounded: a peer sending endless new names
/// gets fresh strings instead of growing the table.
/// </remarks>
public sealed class NameTable
{
    private readonly NameTable? _parent;
    private readonly int _capacity;
    private readonly int _maxKeyBytes;
    private readonly int _maxBuckets;
    private int[] _buckets; // 1-based entry index, 0 = empty
    private Entry[] _entries;
    private int _count;
    private bool _frozen;

    private const int InitialSize = 4;

    private struct Entry
    {
        public byte[] Key;
        public string Value;
        public int Hash;
        public int Next; // 1-based, 0 = end of chain
    }

    /// <summary>Creates a table that first looks in <paramref name="parent"/> and keeps at most <paramref name="capacity"/> own names of up to <paramref name="maxKeyBytes"/> bytes.</summary>
    public NameTable(NameTable? parent = null, int capacity = 512, int maxKeyBytes = 64)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _parent = parent;
        _capacity = capacity;
        _maxKeyBytes = maxKeyBytes;
        // Every connection's parser has a table, and most names it meets are in Common: start small and grow with
        // the names actually added, so an idle connection holds ~100 bytes here rather than the full table.
        _maxBuckets = (int)BitOperations.RoundUpToPowerOf2((uint)capacity);
        _buckets = new int[Math.Min(_maxBuckets, InitialSize)];
        _entries = new Entry[Math.Min(capacity, InitialSize)];
    }

    /// <summary>A frozen, process-wide table of the names and short values XMPP uses all the time.</summary>
    public static NameTable Common { get; } = CreateCommon();

    /// <summary>How many names this table holds itself, not counting its parent.</summary>
    public int Count => _count;

    /// <summary>Returns the interned string for these (valid UTF-8) bytes, adding it when there is room.</summary>
    public string GetOrAdd(ReadOnlySpan<byte> utf8)
    {
        int hash = Hash(utf8);
        if (_parent is not null && _parent.Find(utf8, hash) is { } inherited) return inherited;
        if (Find(utf8, hash) is { } own) return own;
        var value = Encoding.UTF8.GetString(utf8);
        if (!_frozen && _count < _capacity && utf8.Length <= _maxKeyBytes) Insert(utf8.ToArray(), value, hash);
        return value;
    }

    /// <summary>Looks the bytes up in this table and its parent without adding anything.</summary>
    public bool TryGet(ReadOnlySpan<byte> utf8, [NotNullWhen(true)] out string? value)
    {
        int hash = Hash(utf8);
        value = _parent?.Find(utf8, hash) ?? Find(utf8, hash);
        return value is not null;
    }

    /// <summary>Adds a name (unless the table is frozen or full) and returns the instance the table hands out for it.</summary>
    public string Add(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        int hash = Hash(bytes);
        if ((_parent?.Find(bytes, hash) ?? Find(bytes, hash)) is { } existing) return existing;
        if (!_frozen && _count < _capacity && bytes.Length <= _maxKeyBytes) Insert(bytes, name, hash);
        return name;
    }

    private static int Hash(ReadOnlySpan<byte> utf8)
    {
        // HashCode is seeded per process, which keeps chosen-collision floods from degrading lookups.
        var h = new HashCode();
        h.AddBytes(utf8);
        return h.ToHashCode();
    }

    private string? Find(ReadOnlySpan<byte> utf8, int hash)
    {
        int index = _buckets[hash & (_buckets.Length - 1)];
        while (index != 0)
        {
            ref var e = ref _entries[index - 1];
            if (e.Hash == hash && utf8.SequenceEqual(e.Key)) return e.Value;
            index = e.Next;
        }
        return null;
    }

    private void Insert(byte[] key, string value, int hash)
    {
        if (_count == _entries.Length) Array.Resize(ref _entries, Math.Min(_capacity, _entries.Length * 2));
        if (_count >= _buckets.Length && _buckets.Length < _maxBuckets) Rehash(_buckets.Length * 2);
        ref int bucket = ref _buckets[hash & (_buckets.Length - 1)];
        _entries[_count] = new Entry { Key = key, Value = value, Hash = hash, Next = bucket };
        _count++;
        bucket = _count;
    }

    // Chains are rebuilt from the stored hashes; entry indexes do not change.
    private void Rehash(int size)
    {
        var buckets = new int[size];
        for (int i = 0; i < _count; i++)
        {
            ref var e = ref _entries[i];
            ref int bucket = ref buckets[e.Hash & (size - 1)];
            e.Next = bucket;
            bucket = i + 1;
        }
        _buckets = buckets;
    }

    private static NameTable CreateCommon()
    {
        var table = new NameTable(capacity: 512, maxKeyBytes: 128);
        string[] names =
        [
            // Stream and negotiation
            "stream", "xmlns", "xml", "xmlns:stream", "xml:lang", "lang", "version", "id", "to", "from", "type",
            "features", "error", "text", "starttls", "proceed", "required", "mechanisms", "mechanism", "auth",
            "challenge", "response", "success", "failure", "abort", "bind", "resource", "jid", "session", "optional",
            "enable", "enabled", "resume", "resumed", "r", "a", "h", "previd", "max", "location", "sm", "ver",
            "register", "csi", "active", "inactive", "db", "xmlns:db", "1.0", "true", "false",
            // Stanzas and common children
            "message", "presence", "iq", "body", "subject", "thread", "parent", "show", "status", "priority",
            "query", "item", "items", "x", "c", "hash", "node", "name", "subscription", "ask", "group",
            "get", "set", "result", "chat", "normal", "headline", "groupchat", "unavailable", "subscribe",
            "subscribed", "unsubscribe", "unsubscribed", "probe", "away", "xa", "dnd",
            "identity", "category", "feature", "var", "field", "value", "option", "label", "desc", "instructions",
            "title", "reported", "delay", "stamp", "by", "request", "received", "markable", "displayed",
            "acknowledged", "composing", "paused", "gone", "ping", "time", "tzo", "utc", "code", "reason",
            "forwarded", "private", "no-copy", "no-store", "no-permanent-store", "store", "origin-id", "stanza-id",
            "sent", "carbons", "first", "last", "count", "index", "before", "after", "with", "start", "end",
            "fin", "complete", "queryid", "affiliation", "role", "nick", "password", "history", "maxstanzas",
            "since", "seconds", "maxchars", "invite", "decline", "destroy", "publish", "retract", "pubsub",
            "event", "data", "metadata", "info", "bytes", "width", "height", "url", "size", "filename",
            "content-type", "slot", "put", "header", "user", "username", "blocklist", "block", "unblock",
            "client", "pc", "phone", "web", "bot", "console", "server", "im", "pep", "account", "registered",
            "bad-request", "conflict", "feature-not-implemented", "forbidden", "item-not-found",
            "not-acceptable", "not-allowed", "not-authorized", "recipient-unavailable", "remote-server-not-found",
            "service-unavailable", "internal-server-error", "cancel", "continue", "modify", "wait",
            "en", "submit", "form", "hidden", "text-single", "text-private", "list-single", "list-multi",
            "boolean", "fixed", "jid-single", "jid-multi", "text-multi", "FORM_TYPE",
            "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "EXTERNAL", "ANONYMOUS",
            "sasl", "tls", "urn:xmpp:sm:3", "urn:xmpp:csi:0", "urn:xmpp:carbons:2", "urn:xmpp:mam:2",
            "urn:xmpp:sid:0", "urn:xmpp:forward:0", "urn:xmpp:blocking", "urn:xmpp:http:upload:0",
            "urn:xmpp:avatar:data", "urn:xmpp:avatar:metadata", "urn:xmpp:chat-markers:0", "urn:xmpp:hints",
            "http://jabber.org/protocol/chatstates", "http://jabber.org/protocol/muc",
            "http://jabber.org/protocol/muc#user", "http://jabber.org/protocol/muc#admin",
            "http://jabber.org/protocol/muc#owner", "http://jabber.org/protocol/pubsub",
            "http://jabber.org/protocol/pubsub#event", "http://jabber.org/protocol/pubsub#owner",
            "jabber:iq:private", "storage:bookmarks", "vcard-temp", "vCard", "jabber:x:oob",
            "http://jabber.org/protocol/rsm", "set", "urn:xmpp:bookmarks:1", "urn:xmpp:omemo:2",
            "eu.siacs.conversations.axolotl", "urn:xmpp:jingle-message:0", "dialback",
        ];
        foreach (var n in names) table.Add(n);
        foreach (var field in typeof(Ns).GetFields())
            if (field.IsLiteral && field.GetRawConstantValue() is string uri) table.Add(uri);
        table._frozen = true;
        return table;
    }
}
