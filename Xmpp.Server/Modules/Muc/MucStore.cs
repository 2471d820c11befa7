using System.Text.Json;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Muc;

/// Rooms on top of the shared stores: each persistent room's record is a key-value document owned by the room's JID,
/// the service keeps an index of its persistent rooms, and history lives in the "muc" archive collection.
public sealed class MucStore(IStorage storage)
{
    public const string Collection = "muc";
    private const string RoomKey = "muc-room";
    private const string IndexKey = "muc-index";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    private readonly IArchiveStore _archive = storage.Archive(Collection);

    public async ValueTask<MucRoomRecord?> LoadRoomAsync(string room)
    {
        var bytes = await storage.KeyValue.GetAsync(room, RoomKey);
        return bytes is null ? null : JsonSerializer.Deserialize<MucRoomRecord>(bytes, Json);
    }

    public ValueTask SaveRoomAsync(string room, MucRoomRecord record) =>
        storage.KeyValue.SetAsync(room, RoomKey, JsonSerializer.SerializeToUtf8Bytes(record, Json));

    public async ValueTask DeleteRoomAsync(string room)
    {
        await storage.KeyValue.DeleteAsync(room, RoomKey);
        await _archive.DeleteAllAsync(room);
    }

    public async ValueTask<MucServiceIndex> LoadIndexAsync(string service)
    {
        var bytes = await storage.KeyValue.GetAsync(service, IndexKey);
        return bytes is null ? new MucServiceIndex() : JsonSerializer.Deserialize<MucServiceIndex>(bytes, Json) ?? new MucServiceIndex();
    }

    public ValueTask SaveIndexAsync(string service, MucServiceIndex index) =>
        storage.KeyValue.SetAsync(service, IndexKey, JsonSerializer.SerializeToUtf8Bytes(index, Json));

    public async ValueTask AppendHistoryAsync(string room, DateTimeOffset stamp, string nick, Element message, string stanzaId) =>
        await _archive.AppendAsync(room, stamp, nick, ElementWriter.ToBytes(message), stanzaId);

    /// The newest max messages of a room, oldest first.
    public async ValueTask<List<(DateTimeOffset Stamp, Element Message)>> LoadHistoryAsync(string room, int max)
    {
        var list = new List<(DateTimeOffset, Element)>();
        if (max <= 0) return list;
        var page = await _archive.QueryAsync(new ArchiveQuery(room, Max: max, Reverse: true));
        foreach (var r in page.Records.OrderBy(r => r.Id)) list.Add((r.Stamp, StoredStanza.Parse(r.Payload)));
        return list;
    }
}

/// The persistent rooms of one service and the secret that keys its occupant-ids (XEP-0421).
public sealed class MucServiceIndex
{
    public string Secret { get; set; } = "";
    public Dictionary<string, MucRoomSummary> Rooms { get; set; } = new(StringComparer.Ordinal);
}
