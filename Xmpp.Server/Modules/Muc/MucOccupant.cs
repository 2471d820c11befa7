using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

/// One nickname in a room. A user may be in the room with several resources under the same nick (multi-session).
internal sealed class MucOccupant(string nick, Jid bare, string occupantId)
{
    private string _nick = nick;

    public string Nick
    {
        get => _nick;
        set { _nick = value; NickKey = Xmpp.Protocol.Precis.Precis.NicknameComparisonKey(value); }
    }

    /// The nick in RFC 8266 §2.4 comparison form.
    public string NickKey { get; private set; } = Xmpp.Protocol.Precis.Precis.NicknameComparisonKey(nick);
    public Jid Bare { get; } = bare;
    public List<Jid> Sessions { get; } = [];
    public MucRole Role { get; set; }
    public MucAffiliation Affiliation { get; set; }

    /// XEP-0421: stable per real bare JID and room, and revealing neither.
    public string OccupantId { get; } = occupantId;

    /// The client's own presence children (show, status, caps...) without the MUC extension.
    public Element Presence { get; set; } = new("presence", Ns.Client);

    // A token bucket for MucOptions.MessagesPerSecond.
    private double _tokens = double.NaN;
    private long _lastTicks;

    public bool TakeMessageToken(double perSecond, int burst)
    {
        long now = Environment.TickCount64;
        if (double.IsNaN(_tokens)) _tokens = burst;
        else _tokens = Math.Min(burst, _tokens + (now - _lastTicks) / 1000.0 * perSecond);
        _lastTicks = now;
        if (_tokens < 1) return false;
        _tokens -= 1;
        return true;
    }
}
