using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Links.S2s;

/// The server links: one outbound link per (our domain, remote domain), created when the router first has a stanza
/// for the remote domain, and the inbound streams other servers opened. A sweeper closes idle links, pings quiet ones
/// (XEP-0199) and drops inbound streams that never authenticated.
public sealed class S2sLinkManager(S2sServices s, IServiceProvider services) : IRemoteLinks, IHostedService
{
    private readonly ConcurrentDictionary<(string Local, string Remote), OutboundLink> _outbound = new();
    private readonly ConcurrentDictionary<InboundS2sStream, byte> _inbound = new();
    private readonly ConcurrentDictionary<string, OutboundLink> _pings = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _perIp = new(StringComparer.Ordinal);
    private CancellationTokenSource? _stop;
    private Task? _sweeper;
    private long _pingSeq;

    public ValueTask SendAsync(Element stanza, Jid from, Jid to)
    {
        var local = from.Domain;
        var remote = to.Domain;
        if (!s.Serves(local))
        {
            // Only our own domains send over our links; anything else would make us a relay.
            s.Logger.LogWarning("s2s: dropped a {Name} from {From} to {To}: its sender is not at a domain of this server", stanza.Name, from, to);
            return ValueTask.CompletedTask;
        }
        if (s.Refusal(remote) is { } refusal) return BounceAsync(stanza, StanzaErrors.NotAllowed, refusal);
        return EnqueueAsync(local, remote, stanza);
    }

    private ValueTask EnqueueAsync(string local, string remote, Element stanza)
    {
        if (_stopping) return BounceAsync(stanza, StanzaErrors.RemoteServerTimeout, "This server is stopping");
        while (true)
        {
            var link = _outbound.GetOrAdd((local, remote), key =>
            {
                var created = new OutboundLink(s, this, key.Local, key.Remote);
                s.Logger.LogDebug("s2s {Local} -> {Remote}: opening a link", key.Local, key.Remote);
                return created;
            });
            switch (link.TryEnqueue(stanza))
            {
                case OutboundLink.EnqueueResult.Queued:
                    if (link.State == S2sLinkState.Connecting) EnsureStarted(link);
                    return ValueTask.CompletedTask;
                case OutboundLink.EnqueueResult.Full:
                    return BounceAsync(stanza, StanzaErrors.ResourceConstraint, $"Too many stanzas are waiting for {remote}");
                default:
                    // Closing or closed: make way for a new link, unless another caller already did.
                    _outbound.TryRemove(new KeyValuePair<(string, string), OutboundLink>((local, remote), link));
                    continue;
            }
        }
    }

    private readonly ConcurrentDictionary<OutboundLink, byte> _started = new();

    private void EnsureStarted(OutboundLink link)
    {
        if (_started.TryAdd(link, 0)) link.Start();
    }

    internal void Remove(OutboundLink link)
    {
        _outbound.TryRemove(new KeyValuePair<(string, string), OutboundLink>((link.Local, link.Remote), link));
        _started.TryRemove(link, out _);
        if (link.Ping is { } ping) _pings.TryRemove(ping.Id, out _);
    }

    /// A stanza a broken link had not written yet: on to the link that replaces it.
    internal ValueTask ResendAsync(Element stanza)
    {
        if (!Jid.TryParse(stanza.Attr("from"), out var from) || !Jid.TryParse(stanza.Attr("to"), out var to)) return ValueTask.CompletedTask;
        return EnqueueAsync(from!.Domain, to!.Domain, stanza);
    }

    /// The link could not deliver: the router answers with the RFC 6120 §8.3.3 error (never for errors or IQ results).
    internal ValueTask BounceAsync(Element stanza, string condition, string? text)
    {
        if (stanza.Name == "iq" && stanza.Attr("type") == "result") return ValueTask.CompletedTask;
        return s.Router.BounceAsync(stanza, condition, text);
    }

    /// XEP-0288: the peer's inbound link, authenticated for remote and asked to be bidirectional, carries our stanzas
    /// for (local, remote) too, unless a link of our own exists already. Null when it does.
    internal OutboundLink? AdoptPeerLink(string local, string remote, S2sWire wire, string peerAddress)
    {
        if (_stopping) return null;
        var link = OutboundLink.OverPeerLink(s, this, local, remote, wire, peerAddress);
        if (!_outbound.TryAdd((local, remote), link)) return null;
        EnsureStarted(link);
        return link;
    }

    /// Registers an inbound stream; false when its address already has the most connections it may have.
    internal bool Register(InboundS2sStream stream)
    {
        _inbound.TryAdd(stream, 0);
        return _perIp.AddOrUpdate(stream.RemoteAddress, 1, (_, n) => n + 1) <= s.Options.MaxConnectionsPerIp;
    }

    internal void Unregister(InboundS2sStream stream)
    {
        if (!_inbound.TryRemove(stream, out _)) return;
        var ip = stream.RemoteAddress;
        while (_perIp.TryGetValue(ip, out var n))
            if (n <= 1 ? _perIp.TryRemove(new KeyValuePair<string, int>(ip, n)) : _perIp.TryUpdate(ip, n - 1, n)) break;
    }

    internal int AuthenticatedInbound(string remote, InboundS2sStream except) =>
        _inbound.Keys.Count(i => i != except && !i.IsClosed && i.Authenticated.ContainsKey(remote));

    /// An IQ answer to one of our link pings; true when it was one (it is not routed further).
    internal bool CompletePing(string? id)
    {
        if (id is null || !id.StartsWith("s2sping-", StringComparison.Ordinal) || !_pings.TryRemove(id, out var link)) return false;
        link.Ping = null;
        return true;
    }

    public IReadOnlyList<S2sLinkInfo> Links =>
        _outbound.Values.Select(l => new S2sLinkInfo(true, l.Local, l.Remote, l.Authentication, l.State.ToString(), l.PeerAddress))
            .Concat(_inbound.Keys.Where(i => !i.IsClosed).SelectMany(i => i.Authenticated.Count == 0
                ? [new S2sLinkInfo(false, i.Local, i.ClaimedDomain ?? "?", null, "Negotiating", i.RemoteAddress)]
                : i.Authenticated.Select(a => new S2sLinkInfo(false, i.Local, a.Key, a.Value, "Established", i.RemoteAddress))))
            .ToList();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _stop = new CancellationTokenSource();
        _sweeper = Task.Run(() => SweepLoopAsync(_stop.Token));
        // Links close when stopping begins, before Kestrel stops and waits for its connections to end.
        // (Resolved here, not injected: the router, and so this, also runs without a host, as in the router benchmark.)
        services.GetService<IHostApplicationLifetime>()?.ApplicationStopping.Register(CloseAll);
        if (services.GetService<Limits.BlockList>() is { } blocks) blocks.EntryAdded += CloseBlocked;
        return Task.CompletedTask;
    }

    /// A domain added to the server's block list while linked: its links end now, not when they next idle out.
    private void CloseBlocked(string entry)
    {
        if (entry.Contains('@')) return;
        var blocks = services.GetRequiredService<Limits.BlockList>();
        foreach (var link in _outbound.Values)
            if (blocks.IsDomainBlocked(link.Remote)) link.Abort($"{link.Remote} is blocked by this server's policy");
        foreach (var stream in _inbound.Keys)
            if (stream.Authenticated.Keys.Any(blocks.IsDomainBlocked))
                // RFC 6120 §4.9.3.14: the stream ends by this server's policy.
                stream.Close(StreamErrors.PolicyViolation, "Blocked by this server's policy");
    }

    private volatile bool _stopping;

    private void CloseAll()
    {
        _stopping = true;
        _stop?.Cancel();
        foreach (var link in _outbound.Values) link.Abort("the server is stopping");
        foreach (var stream in _inbound.Keys) stream.Close(StreamErrors.SystemShutdown, "The server is stopping");
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        CloseAll();
        if (_sweeper is not null) { try { await _sweeper; } catch (OperationCanceledException) { } }
    }

    private async Task SweepLoopAsync(CancellationToken ct)
    {
        var o = s.Options;
        // The setup timeout counts too: an inbound stream that never authenticates (a slowloris) is closed within a
        // quarter of it after the deadline, not up to 15 s later.
        int shortest = Math.Min(Math.Min(o.IdleTimeoutSeconds, o.SetupTimeoutSeconds), o.PingIntervalSeconds > 0 ? o.PingIntervalSeconds : int.MaxValue);
        var interval = TimeSpan.FromSeconds(Math.Clamp(shortest / 4.0, 0.25, 15));
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(ct))
        {
            try { await SweepAsync(); }
            catch (Exception ex) { s.Logger.LogError(ex, "s2s sweep failed"); }
        }
    }

    private async Task SweepAsync()
    {
        var o = s.Options;
        long idleMs = o.IdleTimeoutSeconds * 1000L;
        foreach (var link in _outbound.Values)
        {
            // Our direction of a peer's bidirectional link lives as long as the peer keeps its stream (and pings it).
            if (link.State != S2sLinkState.Established || link.IsPeerLink) continue;
            if (link.MillisecondsSinceStanza >= idleMs)
            {
                if (link.TryCloseIdle()) Remove(link);
                continue;
            }
            if (o.PingIntervalSeconds <= 0) continue;
            if (link.Ping is { } ping)
            {
                if (Environment.TickCount64 - ping.Ticks > o.PingTimeoutSeconds * 1000L)
                {
                    _pings.TryRemove(ping.Id, out _);
                    link.Ping = null;
                    link.Abort($"no answer to a ping within {o.PingTimeoutSeconds} s");
                }
            }
            else if (link.MillisecondsSinceWrite >= o.PingIntervalSeconds * 1000L)
            {
                var id = "s2sping-" + Interlocked.Increment(ref _pingSeq).ToString(System.Globalization.CultureInfo.InvariantCulture);
                link.Ping = (id, Environment.TickCount64);
                _pings[id] = link;
                await link.SendPingAsync(id);
            }
        }
        foreach (var stream in _inbound.Keys)
        {
            if (stream.IsClosed) continue;
            if (!stream.IsAuthenticated && DateTimeOffset.UtcNow - stream.OpenedAt > TimeSpan.FromSeconds(o.SetupTimeoutSeconds))
                stream.Close(StreamErrors.ConnectionTimeout, "Not authenticated in time");
            else if (stream.MillisecondsSinceRead >= idleMs + o.PingTimeoutSeconds * 1000L)
                // The peer closes its idle links itself; one silent for longer than that is gone.
                stream.Close(StreamErrors.ConnectionTimeout, "Idle");
        }
    }
}
