using System.Runtime.CompilerServices;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Routing;

/// One message to a bare JID that the router handed to several resources (RFC 6121 §8.5.2.1.1), tracked so it is
/// delivered at least once and routed on at most once: a copy written to a connection without stream management, or
/// acknowledged by a client (XEP-0198), settles it; a copy a session gives back unacknowledged when it ends is routed
/// on only by the last holder, and only if no copy settled it. Copies are linked to their group weakly, so a group
/// lives exactly as long as some copy does.
public sealed class SharedDelivery
{
    private static readonly ConditionalWeakTable<Element, SharedDelivery> Groups = new();

    private int _holders;
    private int _settled;

    /// A group for this many copies, each one holder until it is settled or given back.
    internal SharedDelivery(int copies) => _holders = copies;

    /// The group a copy belongs to, or null for a stanza that went to one resource only.
    public static SharedDelivery? Of(Element stanza) =>
        stanza.Name == "message" && Groups.TryGetValue(stanza, out var group) ? group : null;

    internal void Attach(Element copy) => Groups.AddOrUpdate(copy, this);

    /// A Deliver hook replaced the copy with another element: that one stands for it from now on.
    internal static void Carry(Element copy, Element replacement)
    {
        if (Of(copy) is { } group) Groups.AddOrUpdate(replacement, group);
    }

    public bool IsSettled => Volatile.Read(ref _settled) != 0;

    /// A copy reached its client.
    public void Settle() => Volatile.Write(ref _settled, 1);

    /// A holder gives its copy back undelivered. True when the caller must route it on: it was the last holder and
    /// no copy was delivered; from then on the group counts as settled, so this answers true once.
    public bool Release() => Interlocked.Decrement(ref _holders) == 0 && Interlocked.Exchange(ref _settled, 1) == 0;
}
