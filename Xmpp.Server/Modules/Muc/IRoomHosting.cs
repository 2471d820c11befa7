using Xmpp.Protocol.Xml;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Muc;

/// Which node hosts a room when several nodes serve the domain (issue 17, Xmpp:Cluster): one node at a time, under a
/// lease with an epoch. Absent on a single node, where every room is hosted here and nothing is fenced.
public interface IRoomHosting
{
    /// Who hosts the room (its bare JID): this node or another live one, taking the room when nobody live holds it.
    /// Null when this node cannot decide (it has no lease, or Redis or PostgreSQL did not answer).
    ValueTask<RoomHost?> HostAsync(string room);

    /// The epoch this node holds for the room while it hosts it; null once it does not (its writes are then refused).
    long? EpochOf(string room);

    /// Hands a stanza for a room to the node that hosts it.
    void Forward(string node, Element stanza);

    /// Asks the node that hosts a room to destroy it as an administrator would (xmppd room destroy run on another node):
    /// true when it did, false when the room does not exist there, null when that node did not answer.
    Task<bool?> DestroyOnHostAsync(string node, string room, string? reason);

    /// Destroys a room hosted here for another node's DestroyOnHostAsync: the room's bare JID and the reason. Set by
    /// each MUC service for its domain.
    void OnDestroyRequest(string domain, Func<string, string?, ValueTask<bool>> destroy);

    /// Lists a temporary room this node hosts (its summary) for the other nodes: a public one for their disco#items, a
    /// hidden one for their admin room list; or withdraws it (summary null) when it is unloaded or made persistent
    /// (persistent rooms are in storage).
    void ShareLiveRoom(string domain, string local, MucRoomSummary? summary);

    /// The temporary rooms of a service that other live nodes host: the public ones (XEP-0045 §6.3), and with hiddenToo
    /// the hidden ones as well (for the administrator).
    ValueTask<IReadOnlyList<LiveRoom>> LiveRoomsElsewhereAsync(string domain, bool hiddenToo = false);

    /// The room's host refused this node's writes (a newer epoch is recorded): ask again next time.
    void Forget(string room);

    /// Writes that check the room's epoch in the same transaction.
    IRoomFence Fence { get; }

    /// Rooms this node no longer hosts: one room, or every room (null) after this node lost its lease.
    event Action<string?>? RoomsLost;

    /// Another node is gone (its lease ended): rooms hosted here drop that node's occupants.
    event Action<string>? NodeDown;
}

/// A temporary room another node hosts: its local part, its title (may be empty), whether it is public, its host.
public readonly record struct LiveRoom(string Local, string Title, bool Public, string Node);

/// The host of a room: Local when it is this node; Claimed when this node has just taken it (load it from storage).
public readonly record struct RoomHost(string Node, long Epoch, bool Local, bool Claimed);

/// A write of a room's state refused because this node's epoch is no longer the room's (issue 17 fencing).
public sealed class RoomFencedException(string room) : Exception($"room {room}: this node no longer hosts it (stale epoch)")
{
    public string Room { get; } = room;
}
