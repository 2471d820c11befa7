using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Xmpp.Server.Tls;

/// Sets SSL_MODE_RELEASE_BUFFERS on the OpenSSL connection behind an SslStream on Linux, so an idle TLS session
/// holds no record buffers: OpenSSL otherwise keeps a ~17 KiB read and a ~17 KiB write buffer per connection for its
/// whole life (nginx, uWebSockets and Python's ssl module set the same mode). Measured: ~32 KiB less malloc'ed
/// per connection, ~13 KiB less resident (pages of the buffers an idle connection never touched were not resident
/// anyway); README, "Idle TLS memory". .NET neither sets nor exposes it, so
/// the SSL* is found through the stream's security context by reflection (by type, not by field name or position)
/// and the mode is set with SSL_ctrl in the libssl .NET itself loaded. Any failure is logged once as an error and
/// TLS goes on as before; OpenSslBuffersTests fails when the mode stops being set (a .NET update that moves the
/// handle) or stops saving memory.
public static class OpenSslBuffers
{
    private const int SslCtrlMode = 33;             // SSL_CTRL_MODE (openssl/ssl.h)
    private const long SslModeReleaseBuffers = 0x10; // SSL_MODE_RELEASE_BUFFERS

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate long SslCtrl(IntPtr ssl, int cmd, long larg, IntPtr parg);

    private static readonly Lazy<(SslCtrl? Ctrl, string Problem)> Native = new(LoadSslCtrl);
    private static int _reported;

    /// XMPP_TLS_KEEP_BUFFERS=1 leaves OpenSSL's default (buffers kept): for measuring what the mode saves.
    private static readonly bool KeepBuffers = Environment.GetEnvironmentVariable("XMPP_TLS_KEEP_BUFFERS") == "1";

    /// Whether the mode can be set in this process: Linux with the libssl .NET loaded found and SSL_ctrl exported.
    /// Meaningful only once a TLS handshake has run (before that .NET may not have loaded libssl).
    public static bool Supported => OperatingSystem.IsLinux() && Native.Value.Ctrl is not null;

    /// Sets SSL_MODE_RELEASE_BUFFERS on the connection of a stream whose handshake has completed; false (logged
    /// once) when that is not possible here. Call only while no read or write runs on the stream.
    public static bool ReleaseWhenIdle(SslStream stream, ILogger logger)
    {
        if (!OperatingSystem.IsLinux()) return false; // SChannel and Apple's TLS have no such buffers to release
        if (KeepBuffers) return false;
        string problem;
        try
        {
            var native = Native.Value;
            if (native.Ctrl is null) problem = native.Problem;
            else if (FindSslHandle(stream) is not { } handle) problem = "no SafeSslHandle found in the SslStream's security context";
            else
            {
                long mode = WithHandle(handle, ssl => native.Ctrl(ssl, SslCtrlMode, SslModeReleaseBuffers, IntPtr.Zero));
                if ((mode & SslModeReleaseBuffers) != 0) return true;
                problem = $"SSL_ctrl(SSL_CTRL_MODE) returned mode 0x{mode:x} without SSL_MODE_RELEASE_BUFFERS";
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            problem = ex.GetType().Name + ": " + ex.Message;
        }
        if (Interlocked.Exchange(ref _reported, 1) == 0)
            logger.LogError("Idle TLS connections keep OpenSSL's record buffers (~34 KiB each): {Problem}", problem);
        return false;
    }

    /// The connection's OpenSSL mode bits (SSL_get_mode), or null when the SSL* cannot be reached.
    public static long? Mode(SslStream stream)
    {
        var native = Native.Value;
        if (native.Ctrl is null || FindSslHandle(stream) is not { } handle) return null;
        return WithHandle(handle, ssl => native.Ctrl(ssl, SslCtrlMode, 0, IntPtr.Zero));
    }

    public static bool IsReleaseBuffersSet(long mode) => (mode & SslModeReleaseBuffers) != 0;

    internal static long WithHandle(SafeHandle handle, Func<IntPtr, long> call)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (handle.IsInvalid || handle.IsClosed) throw new ObjectDisposedException("SafeSslHandle");
            return call(handle.DangerousGetHandle());
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    private static readonly Dictionary<Type, FieldInfo[]> HandleFields = [];

    /// SslStream → its security context (a SafeHandle on Unix: SafeDeleteSslContext) → the SafeSslHandle (SSL*).
    /// Fields are chosen by their types, so a renamed or reordered field does not matter; two levels at most.
    internal static SafeHandle? FindSslHandle(object stream)
    {
        foreach (var context in SafeHandlesIn(stream))
        {
            if (IsSslHandle(context)) return context;
            foreach (var inner in SafeHandlesIn(context))
                if (IsSslHandle(inner)) return inner;
        }
        return null;
    }

    private static bool IsSslHandle(SafeHandle h) => h.GetType().Name == "SafeSslHandle";

    private static IEnumerable<SafeHandle> SafeHandlesIn(object owner)
    {
        FieldInfo[] fields;
        lock (HandleFields)
        {
            var type = owner.GetType();
            if (!HandleFields.TryGetValue(type, out fields!))
            {
                var found = new List<FieldInfo>();
                for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
                    foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly))
                        if (typeof(SafeHandle).IsAssignableFrom(f.FieldType)) found.Add(f);
                HandleFields[type] = fields = found.ToArray();
            }
        }
        foreach (var f in fields)
            if (f.GetValue(owner) is SafeHandle h) yield return h;
    }

    private static (SslCtrl?, string) LoadSslCtrl()
    {
        var (library, problem) = LibSsl.Value;
        if (library == IntPtr.Zero) return (null, problem);
        if (!NativeLibrary.TryGetExport(library, "SSL_ctrl", out var ctrl)) return (null, problem + " exports no SSL_ctrl");
        return (Marshal.GetDelegateForFunctionPointer<SslCtrl>(ctrl), "");
    }

    /// The libssl already mapped into this process by System.Security.Cryptography.Native.OpenSsl (/proc/self/maps),
    /// so SSL and SSL_CTX objects are handled by the very library that made them; its path, or why there is none.
    internal static readonly Lazy<(IntPtr Library, string PathOrProblem)> LibSsl = new(LoadLibSsl);

    private static (IntPtr, string) LoadLibSsl()
    {
        if (!OperatingSystem.IsLinux()) return (IntPtr.Zero, "not Linux");
        string? path = null;
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int slash = line.IndexOf('/');
            if (slash < 0) continue;
            var file = line[slash..];
            var name = Path.GetFileName(file);
            if (name.StartsWith("libssl.so", StringComparison.Ordinal)) { path = file; break; }
        }
        if (path is null) return (IntPtr.Zero, "no libssl mapped into the process (is .NET using OpenSSL?)");
        return (NativeLibrary.Load(path), path);
    }
}
