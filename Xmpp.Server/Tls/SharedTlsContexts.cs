using System.IO.Pipelines;
using System.Net.Security;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Tls;

/// One OpenSSL context (SSL_CTX) per certificate shared by all its TLS connections on Linux, instead of one per
/// connection, so that reconnecting clients resume their TLS session (TLS 1.3 tickets, TLS 1.2 session ids: a context
/// of its own per connection has its own ticket key, so nothing could ever resume) and an idle connection does not keep
/// a context of its own (measured ~6 KiB resident per idle session; bench/results/2026-12-07-idle-memory-s24.md).
///
/// .NET on Linux caches the context in the certificate's SslStreamCertificateContext only when the options carry no
/// CipherSuitesPolicy, and without one it would offer its own default list (CBC suites included). So the options of a
/// primed certificate carry none, and our suites (CertificateManager.PreferredCipherSuites) are set on the cached
/// contexts themselves: when a certificate is loaded, a handshake over memory with the same options makes .NET create
/// them (one with ALPN, one without: that is its cache key besides the protocols), and SSL_CTX_set_cipher_list and
/// SSL_CTX_set_ciphersuites restrict them before any client can reach them. Every handshake then checks the suite it
/// negotiated (<see cref="IsAllowed"/>), so a context this missed cannot let another suite through. When priming is not
/// possible (a .NET update that moves the handle, no libssl), it is logged and the certificate keeps the policy and a
/// context per connection, as before. SharedTlsContextTests fails when resumption or the restriction stop working.
/// XMPP_TLS_CONTEXT_PER_CONNECTION=1 turns it off, for measuring what it saves.
internal static class SharedTlsContexts
{
    /// The OpenSSL names of CertificateManager.PreferredCipherSuites, in the same order (TLS 1.2, then TLS 1.3).
    internal const string Tls12CipherList =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" +
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
    internal const string Tls13CipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

    private static readonly bool Off = Environment.GetEnvironmentVariable("XMPP_TLS_CONTEXT_PER_CONNECTION") == "1";

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr SslGetSslCtx(IntPtr ssl);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SslSessionReused(IntPtr ssl);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SslCtxSetList(IntPtr ctx, [MarshalAs(UnmanagedType.LPUTF8Str)] string list);

    private static readonly Lazy<(SslGetSslCtx? GetCtx, SslCtxSetList? SetCipherList, SslCtxSetList? SetCipherSuites, string Problem)> Native = new(Load);

    /// Whether a negotiated suite is one of ours; a connection with any other is refused after its handshake.
    public static bool IsAllowed(SslStream ssl) => Array.IndexOf(CertificateManager.PreferredCipherSuites, ssl.NegotiatedCipherSuite) >= 0;

    /// Makes .NET create this certificate's shared contexts and restricts them to our suites; false (logged as an
    /// error) when that is not possible here, and then the certificate's options must keep a CipherSuitesPolicy.
    /// <paramref name="options"/> builds the server options as the listeners will (without a policy) for an ALPN list.
    public static bool Prime(SslStreamCertificateContext context, Func<string[]?, SslServerAuthenticationOptions> options, ILogger logger)
    {
        if (!OperatingSystem.IsLinux() || Off) return false;
        string problem;
        try
        {
            problem = "";
            foreach (var alpn in new[] { null, new[] { "xmpp-client" } })
            {
                var server = options(alpn);
                server.ServerCertificateContext = context;
                var ctx = Task.Run(() => HandshakeOverMemoryAsync(server, alpn)).GetAwaiter().GetResult();
                if (ctx.Problem is not null) { problem = ctx.Problem; break; }
                var native = Native.Value;
                if (native.SetCipherList is null || native.SetCipherSuites is null) { problem = native.Problem; break; }
                if (native.SetCipherList(ctx.Ctx, Tls12CipherList) != 1 || native.SetCipherSuites(ctx.Ctx, Tls13CipherSuites) != 1)
                {
                    problem = "SSL_CTX_set_cipher_list or SSL_CTX_set_ciphersuites refused our suites";
                    break;
                }
                // RFC 8446 §4.6.1: a client resumes with one ticket; OpenSSL issues two after every full TLS 1.3
                // handshake (each one a session serialized, encrypted and MACed). One is enough for a reconnecting
                // phone, and the second was server CPU on every login. Not essential: left at two if it cannot be set.
                NumTickets.Value?.Invoke(ctx.Ctx, TicketsPerHandshake);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            problem = ex.GetType().Name + ": " + ex.Message;
        }
        if (problem.Length == 0) return true;
        logger.LogError("TLS connections keep an OpenSSL context each (no session resumption, ~6 KiB more per idle connection): {Problem}", problem);
        return false;
    }

    /// The SSL_CTX behind a stream whose handshake has completed, or zero when it cannot be reached (tests).
    internal static IntPtr ContextOf(SslStream stream)
    {
        var native = Native.Value;
        if (native.GetCtx is null || OpenSslBuffers.FindSslHandle(stream) is not { } ssl) return IntPtr.Zero;
        return (IntPtr)OpenSslBuffers.WithHandle(ssl, h => (long)native.GetCtx(h));
    }

    internal const int TicketsPerHandshake = 1;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SslCtxSetNumTickets(IntPtr ctx, nuint tickets);

    private static readonly Lazy<SslCtxSetNumTickets?> NumTickets = new(() =>
        OpenSslBuffers.LibSsl.Value.Library is var library && library != IntPtr.Zero
        && NativeLibrary.TryGetExport(library, "SSL_CTX_set_num_tickets", out var set)
            ? Marshal.GetDelegateForFunctionPointer<SslCtxSetNumTickets>(set) : null);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nuint SslCtxGetNumTickets(IntPtr ctx);

    private static readonly Lazy<SslCtxGetNumTickets?> GetNumTickets = new(() =>
        OpenSslBuffers.LibSsl.Value.Library is var library && library != IntPtr.Zero
        && NativeLibrary.TryGetExport(library, "SSL_CTX_get_num_tickets", out var get)
            ? Marshal.GetDelegateForFunctionPointer<SslCtxGetNumTickets>(get) : null);

    /// The TLS 1.3 tickets the stream's context issues after a full handshake (SSL_CTX_get_num_tickets), or null
    /// when it cannot be read (tests).
    internal static long? TicketsPerFullHandshake(SslStream stream) =>
        GetNumTickets.Value is { } get && ContextOf(stream) is var ctx && ctx != IntPtr.Zero ? (long)get(ctx) : null;

    private static readonly Lazy<SslSessionReused?> Reused = new(() =>
        OpenSslBuffers.LibSsl.Value.Library is var library && library != IntPtr.Zero
        && NativeLibrary.TryGetExport(library, "SSL_session_reused", out var reused)
            ? Marshal.GetDelegateForFunctionPointer<SslSessionReused>(reused) : null);

    /// Whether the stream's handshake resumed an earlier session (SSL_session_reused), or null when it cannot be read.
    internal static bool? IsResumed(SslStream stream)
    {
        if (!OperatingSystem.IsLinux() || Reused.Value is not { } call) return null;
        try
        {
            if (OpenSslBuffers.FindSslHandle(stream) is not { } ssl) return null;
            return OpenSslBuffers.WithHandle(ssl, h => call(h)) != 0;
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
    }

    /// A TLS handshake between two SslStreams over in-memory pipes; the server side's SSL_CTX, or why it is not known.
    private static async Task<(IntPtr Ctx, string? Problem)> HandshakeOverMemoryAsync(SslServerAuthenticationOptions serverOptions, string[]? alpn)
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        await using var server = new SslStream(new DuplexPipeStream(new MemoryDuplex(toServer.Reader, toClient.Writer)));
        await using var client = new SslStream(new DuplexPipeStream(new MemoryDuplex(toClient.Reader, toServer.Writer)), false,
            (_, _, _, _) => true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(serverOptions, timeout.Token),
            client.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "prime.invalid",
                ApplicationProtocols = alpn?.Select(p => new SslApplicationProtocol(p)).ToList(),
                AllowTlsResume = false,
            }, timeout.Token));
        var native = Native.Value;
        if (native.GetCtx is null) return (IntPtr.Zero, native.Problem);
        if (OpenSslBuffers.FindSslHandle(server) is not { } ssl) return (IntPtr.Zero, "no SafeSslHandle found in the SslStream's security context");
        var ctx = (IntPtr)OpenSslBuffers.WithHandle(ssl, h => (long)native.GetCtx(h));
        return ctx == IntPtr.Zero ? (IntPtr.Zero, "SSL_get_SSL_CTX returned null") : (ctx, null);
    }

    private sealed class MemoryDuplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;
        public PipeWriter Output => output;
    }

    private static (SslGetSslCtx?, SslCtxSetList?, SslCtxSetList?, string) Load()
    {
        var (library, pathOrProblem) = OpenSslBuffers.LibSsl.Value;
        if (library == IntPtr.Zero) return (null, null, null, pathOrProblem);
        if (!NativeLibrary.TryGetExport(library, "SSL_get_SSL_CTX", out var getCtx)
            || !NativeLibrary.TryGetExport(library, "SSL_CTX_set_cipher_list", out var cipherList)
            || !NativeLibrary.TryGetExport(library, "SSL_CTX_set_ciphersuites", out var cipherSuites))
            return (null, null, null, pathOrProblem + " lacks SSL_get_SSL_CTX, SSL_CTX_set_cipher_list or SSL_CTX_set_ciphersuites");
        return (Marshal.GetDelegateForFunctionPointer<SslGetSslCtx>(getCtx), Marshal.GetDelegateForFunctionPointer<SslCtxSetList>(cipherList),
            Marshal.GetDelegateForFunctionPointer<SslCtxSetList>(cipherSuites), "");
    }
}
