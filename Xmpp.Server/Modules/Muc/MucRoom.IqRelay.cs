// XEP-0045 IQ requests between occupants: a request to an occupant JID reaches the occupant from the sender's occupant
// JID, and the answer comes back the same way, so neither learns the other's real JID.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    private const int MaxPendingIqs = 256;

    private sealed record PendingIq(Jid Requester, string? OriginalId, string TargetNick);

    private readonly Dictionary<string, PendingIq> _pendingIqs = new(StringComparer.Ordinal);
    private readonly Queue<string> _pendingOrder = new();
    private long _iqSeq;

    private void RelayIqRequest(StanzaContext c, MucOccupant sender, MucOccupant target, Element payload)
    {
        var id = "muc-" + (++_iqSeq).ToString(CultureInfo.InvariantCulture);
        _pendingIqs[id] = new PendingIq(c.From, c.Stanza.Attr("id"), target.Nick);
        _pendingOrder.Enqueue(id);
        // Unanswered requests are forgotten oldest first, so a silent occupant cannot grow the table.
        while (_pendingOrder.Count > MaxPendingIqs) _pendingIqs.Remove(_pendingOrder.Dequeue());
        // A vCard belongs to the account, not to one resource (XEP-0054 §3.2).
        var to = payload.Is("vCard", Ns.VCard) ? target.Bare : target.Sessions[0];
        var relayed = c.Stanza.Clone().SetAttr("id", id).SetAttr("from", OccupantJid(sender).ToString()).SetAttr("to", to.ToString());
        Send(relayed);
    }

    private void RelayIqResponse(StanzaContext c)
    {
        var id = c.Stanza.Attr("id");
        if (id is null || !_pendingIqs.Remove(id, out var pending)) return;
        var answer = c.Stanza.Clone().SetAttr("id", pending.OriginalId).SetAttr("to", pending.Requester.ToString())
            .SetAttr("from", Jid.WithResource(pending.TargetNick).ToString());
        Send(answer);
    }
}
