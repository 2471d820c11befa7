using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Presence;

/// What the presence module remembers about one session (ClientSession.State): whether it is available, its last
/// broadcast presence, and where it sent directed presence (RFC 6121 §4.6.3), so its end can be announced there too.
internal sealed class PresenceState
{
    private readonly object _gate = new();
    private readonly HashSet<string> _directed = new(StringComparer.Ordinal);

    public bool Available { get; private set; }

    /// True once the session has sent initial presence, even if it later went unavailable.
    public bool WasAvailable { get; private set; }

    /// The last presence the session broadcast (available or unavailable).
    public Element? Last { get; private set; }

    public void SetAvailable(Element presence)
    {
        lock (_gate)
        {
            Available = true;
            WasAvailable = true;
            Last = presence;
        }
    }

    public void SetUnavailable(Element presence)
    {
        lock (_gate)
        {
            Available = false;
            Last = presence;
        }
    }

    public void AddDirected(string jid)
    {
        lock (_gate) _directed.Add(jid);
    }

    public void RemoveDirected(string jid)
    {
        lock (_gate) _directed.Remove(jid);
    }

    /// The directed-presence recipients, as they are now.
    public string[] Directed()
    {
        lock (_gate) return [.. _directed];
    }

    /// The directed-presence recipients, forgetting them (they are told about unavailability once).
    public List<string> TakeDirected()
    {
        lock (_gate)
        {
            var list = _directed.ToList();
            _directed.Clear();
            return list;
        }
    }
}
