using System.Text.Json;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Muc;

/// Rooms on top of the shared stores: each persistent room's record is a key-value document owned by the room's JID,
/// the service keeps an index of its persistent rooms, and history lives in the "muc" archive collection. In a cluster
/// (hosting given) every write of a room's state goes through the room fence with the epoch this node hosts it with,
/// and throws RoomFencedException when the epoch is no longer the room's.
public sealed class MucStore(IStorage storage, IRoomHosting? hosting = null)
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

    public async ValueTask SaveRoomAsync(string room, MucRoomRecord record)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(record, Json);
        if (hosting is null) await storage.KeyValue.SetAsync(room, RoomKey, bytes);
        else Fenced(room, await hosting.Fence.SetAsync(room, EpochOf(room), room, RoomKey, bytes));
    }

    public async ValueTask DeleteRoomAsync(string room)
    {
        if (hosting is not null)
        {
            long epoch = EpochOf(room);
            Fenced(room, await hosting.Fence.DeleteAsync(room, epoch, room, RoomKey));
            Fenced(room, await hosting.Fence.DeleteArchiveAsync(room, epoch, Collection, room));
            return;
        }
        await storage.KeyValue.DeleteAsync(room, RoomKey);
        await _archive.DeleteAllAsync(room);
    }

    /// A room's directory entry, read again when a cluster node takes the room over (another node may have made it).
    public async ValueTask<MucRoomSummary?> LoadSummaryAsync(string service, string local) =>
        await storage.KeyValue.GetAsync(DirectoryOwner(service), local) is { } bytes
            ? JsonSerializer.Deserialize<MucRoomSummary>(bytes, Json)
            : null;

    private long EpochOf(string room) => hosting!.EpochOf(room) ?? throw new RoomFencedException(room);

    private static void Fenced(string room, bool written)
    {
        if (!written) throw new RoomFencedException(room);
    }

    /// The service's directory of persistent rooms: one small document per room under the service's owner key.
    public async ValueTask<Dictionary<string, MucRoomSummary>> LoadDirectoryAsync(string service)
    {
        var rooms = new Dictionary<string, MucRoomSummary>(StringComparer.Ordinal);
        foreach (var (local, bytes) in await storage.KeyValue.ListAsync(DirectoryOwner(service)))
            if (JsonSerializer.Deserialize<MucRoomSummary>(bytes, Json) is { } summary) rooms[local] = summary;
        return rooms;
    }

    public async ValueTask SaveSummaryAsync(string service, string local, MucRoomSummary summary)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(summary, Json);
        if (hosting is null) await storage.KeyValue.SetAsync(DirectoryOwner(service), local, bytes);
        else
        {
            var room = local + "@" + service;
            Fenced(room, await hosting.Fence.SetAsync(room, EpochOf(room), DirectoryOwner(service), local, bytes));
        }
    }

    public async ValueTask DeleteSummaryAsync(string service, string local)
    {
        if (hosting is null) await storage.KeyValue.DeleteAsync(DirectoryOwner(service), local);
        else
        {
            var room = local + "@" + service;
            Fenced(room, await hosting.Fence.DeleteAsync(room, EpochOf(room), DirectoryOwner(service), local));
        }
    }

    /// The secret that keys the service's occupant-ids (XEP-0421), created once.
    public async ValueTask<string> SecretAsync(string service)
    {
        if (await storage.KeyValue.GetAsync(service, SecretKey) is { } existing) return System.Text.Encoding.UTF8.GetString(existing);
        var secret = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        await storage.KeyValue.SetAsync(service, SecretKey, System.Text.Encoding.UTF8.GetBytes(secret));
        return secret;
    }

    private static string DirectoryOwner(string service) => "muc-rooms:" + service;

    public async ValueTask AppendHistoryAsync(string room, DateTimeOffset stamp, string nick, Element message, string stanzaId)
    {
        if (hosting is null) await _archive.AppendAsync(room, stamp, nick, ElementWriter.ToBytes(message), stanzaId);
        else if (await hosting.Fence.AppendAsync(room, EpochOf(room), Collection, stamp, nick, ElementWriter.ToBytes(message), stanzaId) is null)
            throw new RoomFencedException(room);
    }

    /// A moderation tombstone in place of an archived message (XEP-0425), fenced by the room's epoch like every other
    /// write of the room; false when the record is not there.
    public async ValueTask<bool> ReplaceHistoryAsync(string room, long id, Element tombstone)
    {
        if (hosting is null) return await _archive.ReplaceAsync(room, id, ElementWriter.ToBytes(tombstone));
        return await hosting.Fence.ReplaceArchiveAsync(room, EpochOf(room), Collection, room, id, ElementWriter.ToBytes(tombstone))
            ?? throw new RoomFencedException(room);
    }

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
