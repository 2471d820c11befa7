using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Streams;

/// The client ports on sockets of our own: Xmpp:C2sPort (STARTTLS, RFC 6120 §5.4) and Xmpp:C2sTlsPort (direct TLS,
/// XEP-0368). A connection is the socket, its NetworkStream and, after TLS, the SslStream on it: none of Kestrel's
/// transport pipes, connection objects and adapters, which held ~3 KiB of every idle session (issue 18). What
/// Kestrel's pipeline did on these ports is here too: the PROXY header from trusted proxies first, then on the direct
/// TLS port the ACME tls-alpn-01 answer. The other listeners (HTTP, s2s, components, proxy65) stay on Kestrel.
/// Registered before ShutdownService, which the host stops first: accepting goes on through the drain (Xmpp:DrainSeconds)
/// and ends when the drain ends; what ShutdownService's close and wait leave open is cut when the host's time is up.
public sealed class C2sListener(StreamServices services, IServiceProvider provider, ILogger<C2sListener> logger) : IHostedLifecycleService, IDisposable
{
    private readonly List<Socket> _sockets = [];
    private readonly List<Task> _loops = [];
    private int _open;
    private volatile bool _stopping;
    private long _lastAcceptErrorLog;

    /// Accepted connections not yet closed (PROXY header and ACME phases included).
    public int OpenConnections => Volatile.Read(ref _open);

    /// What a port does with a connection before its stream starts.
    private sealed record Port(string Name, bool DirectTls, ProxyProtocol.ProxyProtocolMiddleware? Proxy, Tls.Acme.TlsAlpn01Responder? Acme);

    private readonly List<(Socket Socket, Port Port)> _bound = [];

    /// Binds the ports, so one that is taken fails the start at once, as a Kestrel listener that cannot bind does.
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var options = services.Options;
        try
        {
            Bind(_bound, options, options.C2sPort, new Port("c2s", false,
                ProxyProtocol.ProxyProtocolMiddleware.Create(options.ProxyProtocol, "c2s", provider), null));
            Bind(_bound, options, options.C2sTlsPort, new Port("c2s direct TLS", true,
                ProxyProtocol.ProxyProtocolMiddleware.Create(options.ProxyProtocol, "c2s direct TLS", provider),
                provider.GetService<Tls.Acme.TlsAlpn01Responder>()));
        }
        catch
        {
            foreach (var (socket, _) in _bound) socket.Dispose();
            _bound.Clear();
            throw;
        }
        return Task.CompletedTask;
    }

    /// Listens once every other service has started, Kestrel's listeners included: a client, load balancer or script
    /// that waits for the client port to answer finds the HTTP, s2s and component ports up too, as when Kestrel
    /// opened them all.
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        foreach (var (socket, port) in _bound)
        {
            try { socket.Listen(services.Options.ListenBacklog); }
            catch (SocketException ex)
            {
                throw new IOException($"Failed to listen on {socket.LocalEndPoint} for the {port.Name} listener: {ex.Message}", ex);
            }
            lock (_sockets) _sockets.Add(socket);
            _loops.Add(AcceptLoopAsync(socket, port));
            logger.LogDebug("Listening for {Name} connections on {EndPoint}", port.Name, socket.LocalEndPoint);
        }
        _bound.Clear();
        return Task.CompletedTask;
    }

    /// The addresses of Xmpp:ListenAddresses, or for "any" (and none) IPv6 any in dual mode, so IPv4 clients arrive
    /// as mapped addresses, and IPv4 any where IPv6 is off: as Kestrel's ListenAnyIP.
    private static void Bind(List<(Socket, Port)> bound, XmppServerOptions options, int port, Port what)
    {
        if (port == 0) return;
        if (options.ListenAddresses.Count == 0 || options.ListenAddresses.Contains("any"))
        {
            Socket socket;
            try { socket = Bind(new IPEndPoint(IPAddress.IPv6Any, port), what.Name); }
            catch (IOException ex) when (ex.InnerException is SocketException
                                         {
                                             SocketErrorCode: SocketError.AddressFamilyNotSupported or SocketError.AddressNotAvailable
                                             or SocketError.ProtocolNotSupported or SocketError.ProtocolFamilyNotSupported
                                         })
            {
                socket = Bind(new IPEndPoint(IPAddress.Any, port), what.Name);
            }
            bound.Add((socket, what));
            return;
        }
        foreach (var address in options.ListenAddresses)
            bound.Add((Bind(new IPEndPoint(IPAddress.Parse(address), port), what.Name), what));
    }

    private static Socket Bind(IPEndPoint endpoint, string name)
    {
        Socket? socket = null;
        try
        {
            socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            if (endpoint.Address.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
            socket.Bind(endpoint);
            return socket;
        }
        catch (SocketException ex)
        {
            socket?.Dispose();
            throw new IOException($"Failed to bind the {name} listener to {endpoint}: {ex.Message}", ex);
        }
    }

    private async Task AcceptLoopAsync(Socket listener, Port port)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(CancellationToken.None);
            }
            catch (Exception ex) when (_stopping && ex is SocketException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                // A client that gave up while queued is no reason to stop. Out of descriptors (EMFILE) and the like:
                // logged at most every 10 s and retried, rather than ending the loop as Kestrel's does.
                if (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted) continue;
                if (Environment.TickCount64 - _lastAcceptErrorLog > 10_000)
                {
                    _lastAcceptErrorLog = Environment.TickCount64;
                    logger.LogWarning("Accepting on the {Name} port failed: {Message}; retrying", port.Name, ex.Message);
                }
                await Task.Delay(100);
                continue;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            Interlocked.Increment(ref _open);
            SocketTransport transport;
            try
            {
                client.NoDelay = true; // as Kestrel's socket transport: stanzas are small and go out at once
                transport = new SocketTransport(client, this);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                client.Dispose(); // reset before it could be set up
                Closed();
                continue;
            }
            // Each connection starts on the thread pool, as Kestrel dispatches them: the accept loop only accepts.
            ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.Listener.StartConnectionAsync(s.Transport, s.Port),
                (Listener: this, Transport: transport, Port: port), preferLocal: false);
        }
    }

    private async Task StartConnectionAsync(SocketTransport transport, Port port)
    {
        try
        {
            // The PROXY header (from trusted load balancers only) is read first, before TLS and every per-IP limit.
            if (port.Proxy is { } proxy && proxy.IsTrusted(transport.RemoteEndPoint))
            {
                if (await proxy.AcceptHeaderAsync(transport.Input, transport.RemoteEndPoint, CancellationToken.None) is not { } header)
                {
                    transport.Close();
                    return;
                }
                if (header.Source is { } source) transport.RemoteEndPoint = source;
            }
            if (port.Acme is { } acme
                && await acme.TryAnswerAsync(transport.Input, transport.TakeForTls, transport.RemoteEndPoint, CancellationToken.None))
            {
                transport.Close();
                return;
            }
            // The stream closes the transport when its run ends, whatever ends it.
            _ = new XmppStream(WrapTransport?.Invoke(transport) ?? transport, services, port.DirectTls).RunAsync();
        }
        catch (Exception ex)
        {
            logger.LogDebug("Connection from {Remote} on the {Name} port ended before its stream began: {Message}", transport.RemoteEndPoint, port.Name, ex.Message);
            transport.Close();
        }
    }

    /// For tests that watch a connection's writes (Xmpp.Tests/Support/CountingTransport.cs).
    internal Func<IStreamTransport, IStreamTransport>? WrapTransport { get; set; }

    internal void Closed() => Interlocked.Decrement(ref _open);

    private void StopAccepting()
    {
        _stopping = true;
        lock (_sockets)
        {
            foreach (var socket in _sockets) socket.Dispose();
            _sockets.Clear();
        }
    }

    // Runs after ShutdownService's StoppingAsync, whose drain keeps accepting (the host stops in reverse order).
    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        StopAccepting();
        return Task.CompletedTask;
    }

    /// Runs after ShutdownService closed every stream and waited for them: connections still open wait until the host's
    /// shutdown time is up and are then cut, as Kestrel cut its connections.
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        StopAccepting();
        await Task.WhenAll(_loops);
        while (OpenConnections > 0 && !cancellationToken.IsCancellationRequested)
            await Task.Delay(20, CancellationToken.None);
        if (OpenConnections == 0) return;
        logger.LogInformation("Stopping: cutting {Count} client connections that did not close", OpenConnections);
        foreach (var stream in services.Connections.All)
            if (stream.Connection is SocketTransport socket) socket.Abort();
    }

    /// A host whose start failed after this one's never stops it: its listening sockets close when the host is disposed.
    public void Dispose()
    {
        StopAccepting();
        foreach (var (socket, _) in _bound) socket.Dispose();
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
