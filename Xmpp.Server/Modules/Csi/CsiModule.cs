// XEP-0352: Client State Indication. A phone in a pocket says <inactive/>; the server then holds back what can wait.
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.Csi;

/// While a session is inactive, stanzas that only refresh what the user will look at later (contacts' presence, typing
/// notifications, read and delivered ticks, copies of such from other devices) wait in a per-session queue, keeping
/// only the latest presence per contact resource and the latest chat state per conversation. Everything a person
/// should see or answer now (messages with a body, receipt requests, calls, IQs, subscription requests, anything
/// unrecognised) passes at once. &lt;active/&gt; delivers the queue in order; a full queue is delivered early; when the
/// session ends, held presence is dropped as stale and held messages go back to the router, so none is lost.
[Xep("XEP-0352", "1.0.0")]
public sealed class CsiModule(ISessionDirectory directory, IRouter router, ILogger<CsiModule> logger) : IXmppModule
{
    /// After the offline module's drain hold (900): what it holds is sent directly once the spool is delivered.
    public const int DeliverOrder = 950;

    /// The most stanzas held for one session; reaching it delivers the queue, so an idle client never costs unbounded memory.
    public const int MaxHeld = 1000;

    private const string PubSubEvent = "http://jabber.org/protocol/pubsub#event";

    private enum Kind
    {
        /// Delivered now.
        Urgent,

        /// Held; a later stanza with the same key replaces it.
        Latest,

        /// Held in order.
        Queued,
    }

    private sealed class CsiState
    {
        public bool Closed;
        public readonly List<(Element Stanza, string? Key)> Held = [];
    }

    public void Register(IModuleBuilder module)
    {
        // §4: the feature is announced once the client has authenticated.
        module.StreamFeature(StreamFeatureStage.PostAuth, c => c.IsAuthenticated ? new Element("csi", Ns.Csi) : null);
        module.StreamElement("active", Ns.Csi, (session, _) => SetActiveAsync(session));
        module.StreamElement("inactive", Ns.Csi, (session, _) => SetInactive(session));
        // XEP-0386 §3.2: <inactive/> (or <active/>, the default) inside a Bind 2 request sets the state the session starts in.
        module.Bind2Inline(Ns.Csi, (session, request) =>
        {
            // Not bound yet: the entry starts out inactive.
            if (request.Name == "inactive") session.AtBind(static e => e with { CsiInactive = true });
            return ValueTask.FromResult<Element?>(null);
        });
        // On the node that holds the session, also for stanzas routed from another node of a cluster.
        module.Hook(HookPoint.DeliverToSession, DeliverOrder, HoldAsync);
        module.OnSessionClosed(ReleaseAsync);
    }

    // §5: the server does not answer either element.
    private ValueTask SetInactive(ISession session)
    {
        var state = session.State<CsiState>();
        lock (state) directory.SetCsiInactive(session, true);
        return ValueTask.CompletedTask;
    }

    private async ValueTask SetActiveAsync(ISession session)
    {
        var state = session.State<CsiState>();
        List<Element> unsent;
        lock (state)
        {
            directory.SetCsiInactive(session, false);
            unsent = Flush(state, session);
        }
        await RerouteAsync(unsent);
    }

    private async ValueTask<bool> HoldAsync(StanzaContext c)
    {
        if (c.Target is not { CsiInactive: true } || c.TargetSession is not { } session) return false;
        var state = session.State<CsiState>();
        List<Element> unsent;
        lock (state)
        {
            // The entry may have changed since the router chose it: the directory's current one decides.
            // A closing session's deliveries fail in the router, which then treats them as undeliverable.
            if (directory.Find(session.Jid) is not { CsiInactive: true } current || !ReferenceEquals(current.Sink, session)
                || state.Closed || session.IsClosing) return false;
            var (kind, key) = Classify(c.Stanza, session.Jid);
            // A message with a body ends the typing notification that preceded it: that one is no longer worth sending.
            if (key is not null) RemoveHeld(state.Held, key);
            if (kind == Kind.Urgent) return false;
            state.Held.Add((c.Stanza, kind == Kind.Latest ? key : null));
            if (state.Held.Count < MaxHeld) return true;
            logger.LogDebug("{Jid} is inactive with {Count} held stanzas; delivering them", session.Jid, state.Held.Count);
            unsent = Flush(state, session);
        }
        await RerouteAsync(unsent);
        return true;
    }

    // Not a lambda in HoldAsync: one capturing key there was allocated for every stanza delivered, held or not.
    private static void RemoveHeld(List<(Element Stanza, string? Key)> held, string key)
    {
        for (var i = held.Count - 1; i >= 0; i--)
            if (held[i].Key == key) held.RemoveAt(i);
    }

    /// Sends the queue in order; returns what the session could no longer take.
    private static List<Element> Flush(CsiState state, ISession session)
    {
        var unsent = new List<Element>();
        foreach (var (stanza, _) in state.Held)
            if (!session.Send(stanza)) unsent.Add(stanza);
        state.Held.Clear();
        return unsent;
    }

    private async ValueTask ReleaseAsync(ISession session)
    {
        var state = session.State<CsiState>();
        List<Element> held;
        lock (state)
        {
            state.Closed = true;
            held = state.Held.Select(h => h.Stanza).ToList();
            state.Held.Clear();
        }
        await RerouteAsync(held);
    }

    /// Held presence is stale once its session is gone (the next session probes afresh, RFC 6121 §4.2.2); held messages
    /// go back to the router, which gives them to another resource or the offline spool as for any vanished resource.
    private async ValueTask RerouteAsync(List<Element> stanzas)
    {
        foreach (var stanza in stanzas)
        {
            if (stanza.Name != "message") continue;
            try { await router.RouteAsync(stanza, null); }
            catch (Exception ex) { logger.LogError(ex, "Re-routing a held message failed"); }
        }
    }

    // ---- What can wait ----

    private static (Kind Kind, string? Key) Classify(Element stanza, Jid self)
    {
        switch (stanza.Name)
        {
            case "presence":
                // Availability of contacts can wait, latest per contact resource; the session's own echo and
                // subscription requests, probes and errors cannot (RFC 6121 §3).
                if (stanza.Attr("type") is not (null or "unavailable")) return (Kind.Urgent, null);
                var from = stanza.Attr("from");
                return from == self.ToString() ? (Kind.Urgent, null) : (Kind.Latest, "presence " + from);
            case "message":
                return ClassifyMessage(stanza);
            default:
                return (Kind.Urgent, null); // IQs expect an answer
        }
    }

    private static (Kind Kind, string? Key) ClassifyMessage(Element message)
    {
        if (message.Attr("type") == "error") return (Kind.Urgent, null);
        // A carbon copy (XEP-0280) waits exactly when the message it carries would.
        string conversation;
        var content = message;
        if (CarbonContent(message) is { } carried)
        {
            var sent = carried.Direction == "sent";
            content = carried.Message;
            conversation = "chat " + carried.Direction + " " + (sent ? content.Attr("to") : content.Attr("from"));
        }
        else conversation = "chat received " + message.Attr("from");

        bool chatState = false, quiet = true;
        foreach (var child in content.Elements())
        {
            switch (child.Namespace)
            {
                case Ns.ChatStates:
                    chatState = true;
                    break;
                case Ns.Receipts when child.Name == "received":
                case Ns.ChatMarkers:
                case Ns.Hints or Ns.Delay or Ns.StanzaId or PubSubEvent:
                case Ns.Client when child.Name == "thread":
                    break;
                default:
                    // A body or subject, a receipt request (XEP-0184 §5: the sender waits for it), a call (XEP-0353),
                    // and anything not known to be quiet.
                    quiet = false;
                    break;
            }
        }
        if (!quiet) return (Kind.Urgent, conversation);
        if (chatState && OnlyChatState(content)) return (Kind.Latest, conversation);
        return (Kind.Queued, null);
    }

    /// XEP-0085 §5.5: a standalone notification; only the latest per conversation matters.
    private static bool OnlyChatState(Element message) =>
        message.Elements().All(c => c.Namespace is Ns.ChatStates or Ns.Hints or Ns.Delay or Ns.StanzaId
            || (c.Namespace == Ns.Client && c.Name == "thread"));

    private static (string Direction, Element Message)? CarbonContent(Element message)
    {
        foreach (var child in message.Elements())
        {
            if (child.Namespace != Ns.Carbons || child.Name is not ("received" or "sent")) continue;
            var inner = child.Child("forwarded", Ns.Forward)?.Child("message", Ns.Client);
            return inner is null ? null : (child.Name, inner);
        }
        return null;
    }
}
