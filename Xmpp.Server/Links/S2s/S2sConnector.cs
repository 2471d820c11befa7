using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Links.S2s;

/// An outbound connection to another server, negotiated up to the stream features after TLS: what a link and a
/// dialback verification both start with.
internal sealed class S2sConnection : IAsyncDisposable
{
    public required S2sWire Wire { get; init; }
    public required S2sTarget Target { get; init; }
    public required string StreamId { get; set; }
    public required Element Features { get; set; }

    /// Null when the peer's certificate proves its domain; otherwise why not.
    public string? CertificateProblem { get; init; }

    public ValueTask DisposeAsync() => Wire.DisposeAsync();
}

/// Thrown when no target of a domain could be used; Timeout says whether it was for lack of an answer
/// (remote-server-timeout) rather than a refusal (remote-server-not-found), RFC 6120 §8.3.3.
internal sealed class S2sConnectException(string message, bool timeout) : Exception(message)
{
    public bool Timeout { get; } = timeout;
}

internal sealed class S2sConnector(S2sServices s)
{
    private static readonly string[] Alpn = ["xmpp-server"];

    /// Tries each target of the remote domain in turn, and each address of each target; logs every failure.
    public async Task<S2sConnection> ConnectAsync(string local, string remote, string purpose, CancellationToken ct)
    {
        var (targets, notes) = await s.Resolver.ResolveAsync(remote, ct);
        var failures = new List<string>(notes);
        bool allTimeouts = targets.Count > 0;
        foreach (var target in targets)
        {
            var (addresses, lookupProblem) = await s.Resolver.AddressesAsync(target.Host, ct);
            if (addresses.Length == 0)
            {
                failures.Add($"{target}: {lookupProblem}");
                allTimeouts = false;
                continue;
            }
            foreach (var address in addresses)
            {
                var where = $"{target} at {address}";
                Socket? socket = null;
                try
                {
                    socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                    {
                        connectTimeout.CancelAfter(TimeSpan.FromSeconds(s.Options.ConnectTimeoutSeconds));
                        try { await socket.ConnectAsync(new IPEndPoint(address, target.Port), connectTimeout.Token); }
                        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                        {
                            throw new TimeoutException($"no answer within {s.Options.ConnectTimeoutSeconds} s");
                        }
                    }
                    var connection = await NegotiateAsync(new NetworkStream(socket, ownsSocket: true), target, local, remote, ct);
                    socket = null;
                    s.Logger.LogDebug("s2s {Local} -> {Remote} ({Purpose}): connected to {Where}", local, remote, purpose, where);
                    return connection;
                }
                catch (Exception ex) when (ex is SocketException or IOException or TimeoutException or XmppStreamException
                                               or S2sClosedException or System.Security.Authentication.AuthenticationException
                                               or S2sNegotiationException)
                {
                    socket?.Dispose();
                    if (ex is not TimeoutException) allTimeouts = false;
                    failures.Add($"{where}: {Describe(ex)}");
                }
            }
        }
        var summary = failures.Count == 0 ? "no targets" : string.Join("; ", failures);
        s.Logger.LogWarning("s2s {Local} -> {Remote} ({Purpose}): could not connect: {Failures}", local, remote, purpose, summary);
        // The sender hears that the domain could not be reached; which addresses were tried stays in the log.
        throw new S2sConnectException(allTimeouts ? $"{remote} did not answer" : $"{remote} could not be reached", allTimeouts);
    }

    private static string Describe(Exception ex) => ex switch
    {
        SocketException se => $"{se.SocketErrorCode} ({se.Message})",
        XmppStreamException xe => $"stream error {xe.Condition}{(xe.Text is null ? "" : ": " + xe.Text)}",
        System.Security.Authentication.AuthenticationException ae => $"TLS handshake failed ({ae.InnerException?.Message ?? ae.Message})",
        _ => ex.Message,
    };

    private async Task<S2sConnection> NegotiateAsync(Stream transport, S2sTarget target, string local, string remote, CancellationToken ct)
    {
        var wire = S2sWire.Over(transport, s.ParserLimits);
        try
        {
            X509Certificate2? peerCertificate = null;
            X509Certificate2Collection? peerChain = null;
            RemoteCertificateValidationCallback capture = (_, certificate, chain, _) =>
            {
                if (certificate is not null) peerCertificate = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                if (chain is not null) peerChain = new X509Certificate2Collection(chain.ChainPolicy.ExtraStore);
                return true; // judged below, by the policy for this domain
            };
            var ours = s.Certificates.Resolve(local).Context;
            if (target.DirectTls) await wire.StartTlsAsClientAsync(remote, ours, Alpn, capture, ct);
            await wire.WriteHeaderAsync(local, remote, null, ct);
            var (header, features) = await ReadHeaderAndFeaturesAsync(wire, ct);
            if (!wire.IsSecure)
            {
                if (features.Child("starttls", Ns.Tls) is null)
                    throw new S2sNegotiationException("the server does not offer STARTTLS, and this server requires TLS on every server link");
                await wire.WriteAsync(new Element("starttls", Ns.Tls), ct);
                var answer = await wire.ReadElementAsync(ct);
                if (!answer.Is("proceed", Ns.Tls)) throw new S2sNegotiationException($"the server answered STARTTLS with <{answer.Name}/>");
                await wire.StartTlsAsClientAsync(remote, ours, null, capture, ct);
                await wire.WriteHeaderAsync(local, remote, null, ct);
                (header, features) = await ReadHeaderAndFeaturesAsync(wire, ct);
            }
            var problem = s.PeerCertificates.Problem(peerCertificate, peerChain, remote);
            return new S2sConnection
            {
                Wire = wire, Target = target, StreamId = header.Attr("id") ?? "", Features = features, CertificateProblem = problem,
            };
        }
        catch
        {
            await wire.DisposeAsync();
            throw;
        }
    }

    public static async Task<(Element Header, Element Features)> ReadHeaderAndFeaturesAsync(S2sWire wire, CancellationToken ct)
    {
        var header = await wire.ReadHeaderAsync(ct);
        if (header.Attr("xmlns") != Ns.Server)
            throw new S2sNegotiationException($"the server answered with a stream in '{header.Attr("xmlns")}', not jabber:server");
        var features = await wire.ReadElementAsync(ct);
        if (features.Is("error", Ns.Streams)) throw StreamError(features);
        if (!features.Is("features", Ns.Streams))
            throw new S2sNegotiationException($"expected stream features, got <{features.Name}/>");
        return (header, features);
    }

    public static S2sNegotiationException StreamError(Element error)
    {
        var condition = error.Elements().FirstOrDefault(e => e.Namespace == Ns.StreamErrors && e.Name != "text")?.Name ?? "undefined-condition";
        var text = error.ChildText("text", Ns.StreamErrors);
        return new S2sNegotiationException($"the server sent stream error {condition}{(text is null ? "" : ": " + text)}");
    }
}

internal sealed class S2sNegotiationException(string message) : Exception(message);
