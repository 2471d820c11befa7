// XEP-0045 §7.2.14 discussion history on entering, with XEP-0203 delay stamps.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    private sealed record HistoryEntry(DateTimeOffset Stamp, Element Message)
    {
        public int Chars { get; } = Message.ToString().Length;
    }

    private readonly LinkedList<HistoryEntry> _history = new();

    private int HistoryCapacity => Math.Clamp(Config.HistoryLength, 0, service.Options.MaxHistoryMessages);

    /// Keeps a groupchat message (as occupants received it) for later joiners, and archives it when the room is archived.
    /// The archived copy also names the sender's real bare JID (XEP-0313 MUC archives let results carry it), which is removed
    /// for queriers who may not see real JIDs; a message from the room itself has no sender.
    private async ValueTask RecordAsync(Element message, MucOccupant? sender, string stanzaId)
    {
        var stamp = DateTimeOffset.UtcNow;
        var kept = message.Clone().SetAttr("to", null);
        if (HistoryCapacity > 0)
        {
            _history.AddLast(new HistoryEntry(stamp, kept));
            while (_history.Count > HistoryCapacity) _history.RemoveFirst();
        }
        if (!Archived) return;
        var archived = kept.Clone();
        if (sender is not null)
            archived.Add(new Element("x", Ns.MucUser).Add(new Element("item", Ns.MucUser).SetAttr("jid", sender.Bare.ToString())));
        await service.Store.AppendHistoryAsync(RoomText, stamp, sender?.Nick ?? "", archived, stanzaId);
    }

    /// §7.2.14: the client may limit history by stanzas, characters, seconds or a start time; each limit applies.
    private void SendJoinHistory(Jid to, Element? mucX)
    {
        var request = mucX?.Child("history", Ns.Muc);
        int maxStanzas = int.MaxValue, maxChars = int.MaxValue;
        DateTimeOffset? since = null;
        if (request is not null)
        {
            if (int.TryParse(request.Attr("maxstanzas"), NumberStyles.None, CultureInfo.InvariantCulture, out var ms)) maxStanzas = ms;
            if (int.TryParse(request.Attr("maxchars"), NumberStyles.None, CultureInfo.InvariantCulture, out var mc)) maxChars = mc;
            if (int.TryParse(request.Attr("seconds"), NumberStyles.None, CultureInfo.InvariantCulture, out var sec))
                since = DateTimeOffset.UtcNow.AddSeconds(-sec);
            if (request.Attr("since") is { } s && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)
                && (since is null || t > since)) since = t;
        }
        // Walk back from the newest until a limit stops us, then send oldest first.
        var chosen = new List<HistoryEntry>();
        int chars = 0;
        for (var node = _history.Last; node is not null && chosen.Count < maxStanzas; node = node.Previous)
        {
            var e = node.Value;
            if (since is { } from && e.Stamp < from) break;
            if (chars + e.Chars > maxChars) break;
            chars += e.Chars;
            chosen.Add(e);
        }
        for (int i = chosen.Count - 1; i >= 0; i--)
        {
            var e = chosen[i];
            var m = e.Message.Clone().SetAttr("to", to.ToString());
            m.Add(new Element("delay", Ns.Delay).SetAttr("from", RoomText)
                .SetAttr("stamp", e.Stamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)));
            Send(m);
        }
    }
}
