// XEP-0198: Stream Management — enabling, acks, resumption, and the end of a session that was kept for resumption.
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules;
using Xmpp.Server.Routing;
using Xmpp.Server.Sessions;
using Xmpp.Storage;

namespace Xmpp.Server.Streams.StreamManagement;

/// Owns every stream-managed session: the table of resumable ones by SM-ID, the 'h' of recently ended ones
/// (for &lt;failed h=…/&gt;), the resumption timers, and what happens to unacknowledged stanzas at the end.
public sealed partial class StreamManagementService(
    XmppServerOptionsAccessor options,
    ISessionDirectory directory,
    IRouter router,
    IStorage storage,
    ServedDomains domains,
    TimeProvider time,
    IServiceProvider services,
    ILogger<StreamManagementService> logger) : IHostedService
{
    private const int MaxRemembered = 10_000;

    private readonly ConcurrentDictionary<string, StreamManagementSession> _resumable = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Ended> _ended = new(StringComparer.Ordinal);
    private ModuleRegistry? _modules;

    private sealed record Ended(string Bare, uint Handled, DateTimeOffset Until);

    // The module registry is built from modules that depend on this service, so it is resolved on first use.
    private ModuleRegistry Modules => _modules ??= services.GetRequiredService<ModuleRegistry>();

    internal int MaxUnacked => options.Value.StreamManagement.MaxUnackedStanzas;
    internal DateTimeOffset Now => time.GetUtcNow();
    private TimeSpan ServerMaxResume => TimeSpan.FromSeconds(options.Value.StreamManagement.ResumeTimeoutSeconds);

    /// Sessions waiting detached for their client (for tests and the admin view).
    public int DetachedCount => _resumable.Values.Count(s => s.IsDetached);

    /// Enables stream management on a session that has just been bound and returns the &lt;enabled/&gt; element
    /// to send (or &lt;failed/&gt; when it is already enabled). Counting starts now: call it before any stanza
    /// goes to the session. Nothing is written here, so Bind2 (XEP-0386) can put the element in its own reply.
    public Element EnableOnBoundSession(ClientSession session, bool resume, int requestedMaxSeconds = 0) =>
        Enable(session, resume, requestedMaxSeconds, announce: false);

    /// Handles &lt;enable/&gt; on a bound stream (XEP-0198 §3): the reply is queued before any counted stanza.
    internal void HandleEnable(ClientSession session, Element enable)
    {
        var resume = enable.Attr("resume") is "true" or "1";
        int max = int.TryParse(enable.Attr("max"), NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : 0;
        var reply = Enable(session, resume, max, announce: true);
        if (reply.Name == "failed") session.Stream.Enqueue(reply);
    }

    private Element Enable(ClientSession session, bool resume, int requestedMaxSeconds, bool announce)
    {
        // XEP-0198 §3: stream management is enabled at most once per session.
        if (session.StreamManagement is not null) return Failed(StanzaErrors.UnexpectedRequest, null);
        var timeout = ServerMaxResume;
        if (requestedMaxSeconds > 0 && TimeSpan.FromSeconds(requestedMaxSeconds) < timeout) timeout = TimeSpan.FromSeconds(requestedMaxSeconds);
        bool resumable = resume && timeout > TimeSpan.Zero;
        var id = resumable ? NewId() : null;
        var sm = new StreamManagementSession(this, session, session.Stream, id, timeout);
        var enabled = new Element("enabled", Ns.StreamManagement);
        if (id is not null)
        {
            enabled.SetAttr("id", id).SetAttr("resume", "true")
                .SetAttr("max", ((int)timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture));
            _resumable[id] = sm;
        }
        session.EnableStreamManagement(sm, announce ? enabled : null);
        return enabled;
    }

    /// &lt;r/&gt; from the client: answer with the number of stanzas handled, once they are routed or durable.
    /// Stanzas routed to storage were committed when their append returned; the flush covers every write a handler
    /// queued (the offline spool, the archive), so the ack never promises more than the disk holds. The answer waits for
    /// the flush, the stream does not: later stanzas are read and routed meanwhile (a client asking after every message
    /// would otherwise stall on every group commit), and the answers keep their order.
    internal ValueTask HandleRequestAsync(ClientSession session)
    {
        if (RequireEnabled(session) is not { } sm) return ValueTask.CompletedTask;
        var (h, needsFlush) = sm.HandledForAck();
        sm.AckWhenDurable(needsFlush ? storage.FlushAsync() : null, h);
        return ValueTask.CompletedTask;
    }

    /// &lt;a h='…'/&gt; from the client: release what it has received.
    internal void HandleAck(ClientSession session, Element ack)
    {
        if (RequireEnabled(session) is not { } sm) return;
        if (!uint.TryParse(ack.Attr("h"), NumberStyles.None, CultureInfo.InvariantCulture, out var h))
        {
            session.Stream.CloseWithError(StreamErrors.BadFormat, "<a/> needs an 'h' between 0 and 4294967295");
            return;
        }
        if (!sm.Acknowledge(h, out var sent))
            session.Stream.CloseWithError(HandledCountTooHigh(h, sent));
    }

    /// &lt;resume/&gt; after binding: XEP-0198 §5 allows it only in place of binding.
    internal void HandleResumeAfterBind(ClientSession session) =>
        session.Stream.Enqueue(Failed(StanzaErrors.UnexpectedRequest, null));

    private StreamManagementSession? RequireEnabled(ClientSession session)
    {
        if (session.StreamManagement is { } sm) return sm;
        session.Stream.CloseWithError(StreamErrors.UnsupportedStanzaType, "Enable stream management (XEP-0198) first");
        return null;
    }

    /// XEP-0198 §6: &lt;failed/&gt; carries a stanza error condition, and 'h' when the old session's count is known.
    internal static Element Failed(string condition, uint? handled)
    {
        var failed = new Element("failed", Ns.StreamManagement);
        if (handled is { } h) failed.SetAttr("h", h.ToString(CultureInfo.InvariantCulture));
        return failed.Add(new Element(condition, Ns.StanzaErrors));
    }

    /// XEP-0198 §4: an 'h' above the number of stanzas sent is a stream error, undefined-condition with the counts.
    internal static Element HandledCountTooHigh(uint h, uint sent) =>
        StreamErrors.Create(StreamErrors.UndefinedCondition, "The acknowledged count is higher than the number of stanzas sent")
            .Add(new Element("handled-count-too-high", Ns.StreamManagement)
                .SetAttr("h", h.ToString(CultureInfo.InvariantCulture))
                .SetAttr("send-count", sent.ToString(CultureInfo.InvariantCulture)));

    public Task StartAsync(CancellationToken cancellationToken)
    {
        RegisterClusterHandlers();
        return Task.CompletedTask;
    }

    /// At shutdown every detached session ends, so its unacknowledged messages reach the offline spool before
    /// storage closes.
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _requestTimer?.Dispose();
        foreach (var sm in _resumable.Values.ToList())
            if (sm.EndIfDetached()) await EndAsync(sm, "the server is shutting down");
    }
}
