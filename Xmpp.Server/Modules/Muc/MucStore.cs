using System.Text.Json;
using Xmpp.Protocol;
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
    private const string SecretKey = "muc-secret";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    private readonly IArchiveStore _archive = storage.Archive(Collection);

    /// The room archives (owner: the room's bare JID), for MAM queries and moderation.
    internal IArchiveStore Archive => _archive;

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

    /// The service's directory of persistent rooms: one small document per room under the service's owner key.
    public async ValueTask<Dictionary<string, MucRoomSummary>> LoadDirectoryAsync(string service)
    {
        var rooms = new Dictionary<string, MucRoomSummary>(StringComparer.Ordinal);
        foreach (var (local, bytes) in await storage.KeyValue.ListAsync(DirectoryOwner(service)))
            if (JsonSerializer.Deserialize<MucRoomSummary>(bytes, Json) is { } summary) rooms[local] = summary;
        return rooms;
    }

    public ValueTask SaveSummaryAsync(string service, string local, MucRoomSummary summary) =>
        storage.KeyValue.SetAsync(DirectoryOwner(service), local, JsonSerializer.SerializeToUtf8Bytes(summary, Json));

    public async ValueTask DeleteSummaryAsync(string service, string local) =>
        await storage.KeyValue.DeleteAsync(DirectoryOwner(service), local);

    /// The secret that keys the service's occupant-ids (XEP-0421), created once.
    public async ValueTask<string> SecretAsync(string service)
    {
        if (await storage.KeyValue.GetAsync(service, SecretKey) is { } existing) return System.Text.Encoding.UTF8.GetString(existing);
        var secret = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        await storage.KeyValue.SetAsync(service, SecretKey, System.Text.Encoding.UTF8.GetBytes(secret));
        return secret;
    }

    private static string DirectoryOwner(string service) => "muc-rooms:" + service;

    public async ValueTask AppendHistoryAsync(string room, DateTimeOffset stamp, string nick, Element message, string stanzaId) =>
        await _archive.AppendAsync(room, stamp, nick, ElementWriter.ToBytes(message), stanzaId);

    /// The newest max messages of a room, oldest first.
    public async ValueTask<List<(DateTimeOffset Stamp, Element Message)>> LoadHistoryAsync(string room, int max)
    {
        var list = new List<(DateTimeOffset, Element)>();
        if (max <= 0) return list;
        var page = await _archive.QueryAsync(new ArchiveQuery(room, Max: max, Reverse: true));
        foreach (var r in page.Records.OrderBy(r => r.Id))
        {
            // The archive keeps the sender's real JID for those who may see it in MAM results; history on join does not.
            var message = StoredStanza.Parse(r.Payload);
            message.RemoveAll("x", Ns.MucUser);
            list.Add((r.Stamp, message));
        }
        return list;
    }
}
