using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;
using Xmpp.Server.Streams.StreamManagement;

namespace Xmpp.Server.Streams;

public sealed partial class XmppStream
{
    /// XEP-0198 elements on an authenticated stream before binding: &lt;resume/&gt; takes a detached session over
    /// in place of binding (§5); &lt;enable/&gt; (and anything else) has to wait for binding (§3).
    private async ValueTask<StreamAction> HandleStreamManagementBeforeBindAsync(Element e)
    {
        if (e.Name != "resume")
        {
            await WriteDirectAsync(StreamManagementService.Failed(StanzaErrors.UnexpectedRequest, null));
            return StreamAction.Continue;
        }
        if (_s.StreamManagement.RemoteNodeOf(e.Attr("previd")) is { } node) return await ResumeFromNodeAsync(e, node);
        var result = _s.StreamManagement.TryResume(this, Jid.Create(_username, _domain), e);
        if (result.StreamError)
        {
            _endsSession = true;
            await WriteDirectAsync(result.Reply);
            await CloseGracefullyAsync();
            return StreamAction.Stop;
        }
        await WriteDirectAsync(result.Reply);
        if (result.Session is not { } sm) return StreamAction.Continue; // <failed/>: the client may bind instead
        GoLiveResumed(result, sm);
        return StreamAction.Continue;
    }

    /// Issue 17: &lt;resume/&gt; of a session another cluster node issued: handed over from it, bound here again.
    private async ValueTask<StreamAction> ResumeFromNodeAsync(Element e, string node)
    {
        var handOver = await _s.StreamManagement.ResumeFromNodeAsync(this, Jid.Create(_username, _domain), e, node);
        if (handOver.StreamError)
        {
            _endsSession = true;
            await WriteDirectAsync(handOver.Reply);
            await CloseGracefullyAsync();
            return StreamAction.Stop;
        }
        await WriteDirectAsync(handOver.Reply);
        if (handOver.Session is not { } sm) return StreamAction.Continue; // <failed/>: the client may bind instead
        await GoLiveHandedOverAsync(sm);
        return StreamAction.Continue;
    }

    /// After &lt;resumed/&gt; for a session handed over from another node went out (on its own or inside a SASL2
    /// &lt;success/&gt;): bound here with what the old node's directory knew, then the unacknowledged stanzas go out again.
    private async ValueTask GoLiveHandedOverAsync(StreamManagementSession sm)
    {
        var session = sm.Session;
        EnterBound(session);
        if (_s.Directory.Get(session.Jid.Bare).Find(session.Jid.Resource!) is { Sink: ClientSession old }) await EndReplacedAsync(old);
        var previous = _s.Directory.Bind(_s.StreamManagement.AdoptedEntry(sm, session.InitialEntry()));
        previous?.Sink.Replace("Replaced by a new connection with the same resource");
        foreach (var handler in _s.Modules.SessionBound) await handler(session);
        if (!sm.GoLive(this))
        {
            CloseWithError(StreamErrors.Conflict, "The session was taken over by another stream");
            return;
        }
        _s.Logger.LogDebug("Resumed {Jid} from another node", session.Jid);
    }

    /// After &lt;resumed/&gt; went out (on its own, or inside a SASL2 &lt;success/&gt;): this stream takes the session over.
    private void GoLiveResumed(StreamManagementService.ResumeResult result, StreamManagementSession sm)
    {
        // §5: the old connection, if the server still thinks it open, is replaced.
        result.Previous?.CloseWithError(StreamErrors.Conflict, "Replaced by a resumed stream");
        var session = sm.Session;
        EnterBound(session);
        session.Attach(this);
        if (!sm.GoLive(this))
        {
            // Resumed again elsewhere, or ended, in the meantime: this stream has nothing to serve.
            CloseWithError(StreamErrors.Conflict, "The session was taken over by another stream");
            return;
        }
        _s.Logger.LogDebug("Resumed {Jid}", session.Jid);
    }
}
