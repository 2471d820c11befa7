using System.Net;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Limits;

/// The per-account and per-address stanza rates of client streams (Xmpp:RateLimits). A request over its rate is
/// refused with a policy-violation stanza error of type "wait" (RFC 6120 §8.3.3.12 lets the type be "wait" when the
/// policy is about time); nothing is dropped in silence. Answers (IQ results, error stanzas) are never refused here,
/// as RFC 6120 §8.3.1 forbids answering an error with an error; the connection's byte rate
/// (Xmpp:Limits:ReadBytesPerSecond) bounds them.
public sealed class StanzaRateLimits
{
    private readonly RateLimiter? _messages, _presence, _iq, _ipMessages, _ipPresence, _ipIq;
    private readonly bool _exemptLoopback;

    public StanzaRateLimits(XmppServerOptionsAccessor options, TimeProvider time)
    {
        var o = options.Value.RateLimits;
        _messages = Make(o.MessagesPerSecond, o.MessageBurst, 1);
        _presence = Make(o.PresencePerSecond, o.PresenceBurst, 1);
        _iq = Make(o.IqPerSecond, o.IqBurst, 1);
        var f = o.PerIpFactor;
        _exemptLoopback = o.ExemptLoopback;
        _ipMessages = f > 0 ? Make(o.MessagesPerSecond, o.MessageBurst, f) : null;
        _ipPresence = f > 0 ? Make(o.PresencePerSecond, o.PresenceBurst, f) : null;
        _ipIq = f > 0 ? Make(o.IqPerSecond, o.IqBurst, f) : null;

        RateLimiter? Make(double rate, int burst, double factor) => rate > 0 ? new RateLimiter(rate * factor, burst * factor, time) : null;
    }

    /// Null when the stanza may go on; otherwise the text of the policy-violation to answer it with.
    /// address: the connection's key from AddressKey, worked out once per connection rather than per stanza.
    public string? Check(Element stanza, string account, string address)
    {
        var type = stanza.Attr("type");
        if (type == "error") return null;
        switch (stanza.Name)
        {
            case "message":
                return Take(_messages, _ipMessages, account, address) ? null : "Too many messages: slow down";
            case "presence":
                return Take(_presence, _ipPresence, account, address) ? null : "Too many presence updates: slow down";
            case "iq" when type is "get" or "set":
                return Take(_iq, _ipIq, account, address) ? null : "Too many requests: slow down";
            default:
                return null;
        }
    }

    /// The per-address rate's key for a connection from this address: empty (no per-address rate) for loopback when
    /// Xmpp:RateLimits:ExemptLoopback is on.
    public string AddressKey(string address) =>
        _exemptLoopback && IPAddress.TryParse(address, out var ip) && IPAddress.IsLoopback(ip) ? "" : address;

    private static bool Take(RateLimiter? perAccount, RateLimiter? perIp, string account, string address)
    {
        if (perAccount is not null && !perAccount.TryTake(account)) return false;
        return perIp is null || address.Length == 0 || perIp.TryTake(address);
    }
}
