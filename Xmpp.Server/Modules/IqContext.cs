using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules;

/// An IQ get or set being handled; exactly one of Result or Error must be called (RFC 6120 §8.2.3).
public sealed class IqContext(Element stanza, Jid from, Jid to, Element payload, ISession? origin, Action<Element> send, bool unaddressed = false)
{
    private int _answered;

    public Element Stanza { get; } = stanza;
    public Jid From { get; } = from;
    public Jid To { get; } = to;
    public Element Payload { get; } = payload;

    /// The local session that sent the IQ; null for server-generated IQs and unauthenticated streams.
    public ISession? Origin { get; } = origin;

    /// The peer's address, for per-IP policies such as registration throttling.
    public string? RemoteAddress { get; init; }

    /// For IQs on an unauthenticated stream: what earlier pre-auth IQs of the same stream left for later ones (a
    /// XEP-0445 token presented before XEP-0077 registration); null once the stream is authenticated.
    public IDictionary<string, string>? StreamState { get; init; }

    public bool IsGet => Stanza.Attr("type") == "get";
    public bool IsSet => Stanza.Attr("type") == "set";
    public bool Answered => Volatile.Read(ref _answered) != 0;

    public void Result(Element? payload = null)
    {
        if (Interlocked.Exchange(ref _answered, 1) != 0) return;
        var reply = new Element("iq", Ns.Client).SetAttr("type", "result").SetAttr("id", Stanza.Attr("id"));
        Address(reply);
        if (payload is not null) reply.Add(payload);
        send(reply);
    }

    /// Answers with an error; applicationCondition is an extra child of &lt;error/&gt; (RFC 6120 §8.3.2).
    public void Error(string condition, string? text = null, string? type = null, Element? applicationCondition = null)
    {
        if (Interlocked.Exchange(ref _answered, 1) != 0) return;
        var reply = StanzaErrors.Reply(Stanza, condition, text, type);
        if (applicationCondition is not null) reply.Child("error", Ns.Client)!.Add(applicationCondition);
        reply.SetAttr("from", null).SetAttr("to", null);
        Address(reply);
        send(reply);
    }

    /// An error with an application-specific condition beside the stanza one (RFC 6120 §8.3.4), e.g. pubsub#errors.
    public void Error(string condition, Element applicationCondition, string? text = null)
    {
        if (Interlocked.Exchange(ref _answered, 1) != 0) return;
        var reply = StanzaErrors.Reply(Stanza, condition, text);
        reply.SetAttr("from", null).SetAttr("to", null);
        reply.Child("error", Ns.Client)?.Add(applicationCondition);
        Address(reply);
        send(reply);
    }

    private void Address(Element reply)
    {
        // Before authentication the client has no address yet, so replies carry none (XEP-0077 §3.1).
        if (unaddressed) return;
        reply.SetAttr("from", To.ToString()).SetAttr("to", From.ToString());
    }
}
