using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Xmpp.Tests.Support;

/// A private Pebble (Let's Encrypt's ACME test server, Debian's pebble package) on free loopback ports, with
/// pebble-challtestsrv from the same package as its DNS server answering 127.0.0.1 for every name, so Pebble really
/// validates http-01 challenges against HttpChallengePort on this machine without any change to /etc. Stopped by PID.
public sealed class PebbleInstance : IAsyncDisposable
{
    private readonly string _dir;
    private readonly Process _dns;
    private readonly Process _pebble;
    private readonly StringBuilder _output = new();

    private PebbleInstance(string dir, int acmePort, int managementPort, int httpChallengePort, int tlsChallengePort, Process dns, Process pebble)
    {
        TlsChallengePort = tlsChallengePort;
        _dir = dir;
        DirectoryUrl = $"https://127.0.0.1:{acmePort}/dir";
        ManagementUrl = $"https://127.0.0.1:{managementPort}";
        HttpChallengePort = httpChallengePort;
        _dns = dns;
        _pebble = pebble;
    }

    public string DirectoryUrl { get; }
    public string ManagementUrl { get; }

    /// The port Pebble connects to for http-01 (its httpPort); the server's Xmpp:Acme:Http01Port.
    public int HttpChallengePort { get; }

    /// The port Pebble connects to for tls-alpn-01 (its tlsPort); the server's C2sTlsPort.
    public int TlsChallengePort { get; }

    /// The CA of Pebble's own HTTPS listener (made here), for Xmpp:Acme:CaCertificateFile.
    public string ListenerCaFile => Path.Combine(_dir, "listener.pem");

    public string Output { get { lock (_output) return _output.ToString(); } }

    /// certificateValidity: lifetime of the certificates Pebble issues.
    public static async Task<PebbleInstance> StartAsync(TimeSpan certificateValidity)
    {
        var pebble = ClientProcess.RequireProgram("pebble", "pebble");
        var challtestsrv = ClientProcess.RequireProgram("pebble-challtestsrv", "pebble");
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-pebble-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            var request = new CertificateRequest("CN=Pebble listener", key, HashAlgorithmName.SHA256);
            var san = new SubjectAlternativeNameBuilder();
            san.AddIpAddress(System.Net.IPAddress.Loopback);
            san.AddDnsName("localhost");
            request.CertificateExtensions.Add(san.Build());
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
            File.WriteAllText(Path.Combine(dir, "listener.pem"), certificate.ExportCertificatePem());
            File.WriteAllText(Path.Combine(dir, "listener.key"), key.ExportPkcs8PrivateKeyPem());
        }
        int acme = TestServer.FreePort(), management = TestServer.FreePort(), http = TestServer.FreePort(), tls = TestServer.FreePort();
        int dns = TestServer.FreePort(), dnsManagement = TestServer.FreePort();
        var config = $"\"listenAddress\": \"127.0.0.1:{acme}\", \"managementListenAddress\": \"127.0.0.1:{management}\", "
            + $"\"certificate\": \"{dir}/listener.pem\", \"privateKey\": \"{dir}/listener.key\", \"httpPort\": {http}, \"tlsPort\": {tls}, "
            + $"\"ocspResponderURL\": \"\", \"externalAccountBindingRequired\": false, \"certificateValidityPeriod\": {(long)certificateValidity.TotalSeconds}";
        File.WriteAllText(Path.Combine(dir, "pebble.json"), "{\"pebble\": {" + config + "}}");
        var dnsProcess = Start(challtestsrv, ["-dns01", $"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
            "-management", $"127.0.0.1:{dnsManagement}", "-defaultIPv6", ""], dir, null);
        // No random 0-15 s pause before each validation; validation itself is real.
        var pebbleProcess = Start(pebble, ["-config", Path.Combine(dir, "pebble.json"), "-dnsserver", $"127.0.0.1:{dns}"], dir,
            new() { ["PEBBLE_VA_NOSLEEP"] = "1" });
        var instance = new PebbleInstance(dir, acme, management, http, tls, dnsProcess, pebbleProcess);
        instance.Capture(dnsProcess);
        instance.Capture(pebbleProcess);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", acme);
                return instance;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !pebbleProcess.HasExited)
            {
                await Task.Delay(100);
            }
            catch (SocketException)
            {
                var output = instance.Output;
                await instance.DisposeAsync();
                throw new InvalidOperationException("pebble did not start:\n" + output);
            }
        }
    }

    /// Pebble's issuing root, made anew at each start, from its management interface.
    public async Task<X509Certificate2> RootAsync()
    {
        using var http = new HttpClient(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } });
        return X509Certificate2.CreateFromPem(await http.GetStringAsync(ManagementUrl + "/roots/0"));
    }

    private static Process Start(string program, string[] args, string dir, Dictionary<string, string>? environment)
    {
        var info = new ProcessStartInfo(program) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? []) info.Environment[k] = v;
        return Process.Start(info)!;
    }

    private void Capture(Process process)
    {
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in new[] { _pebble, _dns })
        {
            try
            {
                if (!p.HasExited) p.Kill();
                await p.WaitForExitAsync();
            }
            catch (InvalidOperationException) { }
            p.Dispose();
        }
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
