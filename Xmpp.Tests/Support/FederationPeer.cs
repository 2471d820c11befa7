using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Support;

/// Which other XMPP server a federation test runs against (both from Debian packages).
public enum PeerKind { Prosody, Ejabberd }

/// A private instance of Prosody or ejabberd as a federation peer: its own temporary folder, configuration and free
/// loopback ports, started as the current user (no prosodyctl/ejabberdctl, no system service) in a mount namespace
/// whose /etc/resolv.conf names a TestDns, so it finds our server through SRV records the test serves; stopped by PID.
public sealed class FederationPeer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private FederationPeer(PeerKind kind, string domain, string dir, int c2sPort, int s2sPort, Process process)
    {
        Kind = kind;
        Domain = domain;
        Dir = dir;
        C2sPort = c2sPort;
        S2sPort = s2sPort;
        _process = process;
        process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public PeerKind Kind { get; }
    public string Domain { get; }
    public string MucDomain => "conference." + Domain;
    public string Dir { get; }
    public int C2sPort { get; }
    public int S2sPort { get; }
    public int Pid => _process.Id;
    public ServerEndpoint Endpoint => new("127.0.0.1", C2sPort, C2sPort, Domain);

    /// The peer's own log and console output, for failure messages (the last 20000 characters).
    public string Log
    {
        get
        {
            var text = FullLog;
            return text.Length > 20000 ? text[^20000..] : text;
        }
    }

    public string FullLog
    {
        get
        {
            var sb = new StringBuilder();
            foreach (var f in Directory.GetFiles(Dir, "*.log", SearchOption.AllDirectories))
            {
                try
                {
                    using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                    sb.Append("== ").AppendLine(f).AppendLine(new StreamReader(stream).ReadToEnd());
                }
                catch (IOException) { }
            }
            lock (_output) sb.AppendLine("== console").Append(_output);
            return sb.ToString();
        }
    }

    /// Root binds the test DNS server on port 53 and bind-mounts the private resolv.conf.
    public static bool CanRun => Environment.UserName == "root";

    /// Why the peer cannot start here (its program or the tools for a private resolv.conf are missing), or null.
    public static string? Missing(PeerKind kind)
    {
        foreach (var tool in new[] { "/usr/bin/unshare", "/bin/mount" })
            if (!File.Exists(tool)) return tool + " is missing";
        return kind switch
        {
            PeerKind.Prosody when !File.Exists("/usr/bin/prosody") => "prosody is not installed (test.sh installs it)",
            PeerKind.Ejabberd when !Directory.Exists("/usr/lib/x86_64-linux-gnu") || !Directory.EnumerateDirectories("/usr/lib/x86_64-linux-gnu", "ejabberd-*").Any()
                => "ejabberd is not installed (test.sh installs it)",
            _ => null,
        };
    }

    /// Writes DIR/DOMAIN/fullchain.pem and privkey.pem: issued by the test CA, or self-signed when ca is null. Either
    /// names the domain and its MUC service as DNS-IDs and nothing else, as a Let's Encrypt certificate would.
    /// COMPAT(ejabberd 23.01): its xmpp library crashes while reading an xmppAddr otherName of a peer's certificate
    /// (xmpp_stream_pkix:get_cert_domains, badarg in ++) and drops the stream, so the certificates carry none.
    public static (string Cert, string Key) IssueCertificate(TestCa? ca, string domain, string certDir)
    {
        string[] names = [domain, "conference." + domain];
        if (ca is not null) ca.Issue(domain, certDir, dnsNames: names, xmppAddrs: []);
        else
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=" + domain, key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
                new OidCollection { new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2") }, critical: false));
            request.CertificateExtensions.Add(SanBuilder.Build(names, [], []));
            var now = DateTimeOffset.UtcNow;
            using var cert = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(20));
            var dir = Path.Combine(certDir, domain);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "fullchain.pem"), cert.ExportCertificatePem() + "\n");
            File.WriteAllText(Path.Combine(dir, "privkey.pem"), key.ExportPkcs8PrivateKeyPem() + "\n");
        }
        return (Path.Combine(certDir, domain, "fullchain.pem"), Path.Combine(certDir, domain, "privkey.pem"));
    }

    /// Starts the peer serving DOMAIN (users on DOMAIN, MUC on conference.DOMAIN). caFile: the CA it trusts for
    /// peers' certificates, or null when it trusts none of ours (dialback).
    public static async Task<FederationPeer> StartAsync(PeerKind kind, string domain, string dir, string cert, string key, string? caFile, TestDns dns)
    {
        Directory.CreateDirectory(dir);
        int c2s = TestServer.FreePort(), s2s = TestServer.FreePort();
        var resolv = Path.Combine(dir, "resolv.conf");
        File.WriteAllText(resolv, dns.ResolvConf);
        var psi = new ProcessStartInfo("unshare")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = dir,
        };
        // A private mount namespace: the bind mount over /etc/resolv.conf is seen by this process tree only. unshare
        // and sh exec, so the PID is the server's own.
        foreach (var a in new[] { "--mount", "--propagation", "private", "sh", "-c", "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"", resolv })
            psi.ArgumentList.Add(a);
        psi.Environment["HOME"] = dir;
        if (kind == PeerKind.Prosody)
        {
            Directory.CreateDirectory(Path.Combine(dir, "certs")); // where Prosody looks for more certificates; none here
            File.WriteAllText(Path.Combine(dir, "prosody.cfg.lua"), ProsodyConfig(domain, dir, c2s, s2s, cert, key, caFile));
            foreach (var a in new[] { "prosody", "-F", "--config", Path.Combine(dir, "prosody.cfg.lua") }) psi.ArgumentList.Add(a);
        }
        else
        {
            var combined = Path.Combine(dir, "combined.pem");
            File.WriteAllText(combined, File.ReadAllText(cert) + File.ReadAllText(key));
            File.WriteAllText(Path.Combine(dir, "ejabberd.yml"), EjabberdConfig(domain, dir, c2s, s2s, combined, caFile));
            Directory.CreateDirectory(Path.Combine(dir, "spool"));
            psi.Environment["EJABBERD_CONFIG_PATH"] = Path.Combine(dir, "ejabberd.yml");
            psi.Environment["EJABBERD_LOG_PATH"] = Path.Combine(dir, "ejabberd.log");
            psi.Environment["ERL_LIBS"] = "/usr/lib/x86_64-linux-gnu";
            psi.Environment["ERL_CRASH_DUMP"] = Path.Combine(dir, "erl_crash.dump");
            psi.Environment["ERL_CRASH_DUMP_BYTES"] = "0";
            // Without ejabberdctl (which switches to the ejabberd system user); no Erlang distribution, so no epmd.
            foreach (var a in new[] { "erl", "-noinput", "-mnesia", "dir", "\"" + Path.Combine(dir, "spool") + "\"", "-s", "ejabberd" })
                psi.ArgumentList.Add(a);
        }
        var peer = new FederationPeer(kind, domain, dir, c2s, s2s, Process.Start(psi)!);
        try
        {
            await peer.WaitListeningAsync(TimeSpan.FromSeconds(60));
        }
        catch
        {
            await peer.DisposeAsync();
            throw;
        }
        return peer;
    }

    private async Task WaitListeningAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"{Kind} exited at start:\n{Log}");
            bool c2s = await Accepts(C2sPort), s2s = await Accepts(S2sPort);
            if (c2s && s2s) return;
            await Task.Delay(200);
        }
        throw new TimeoutException($"{Kind} did not start listening:\n{Log}");

        static async Task<bool> Accepts(int port)
        {
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", port);
                return true;
            }
            catch (SocketException) { return false; }
        }
    }

    private static string Lua(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    private static string ProsodyConfig(string domain, string dir, int c2s, int s2s, string cert, string key, string? caFile) => $$"""
        -- Generated by Xmpp.Tests FederationPeer: loopback only, its own folder and ports.
        run_as_root = true
        daemonize = false
        pidfile = {{Lua(Path.Combine(dir, "prosody.pid"))}}
        data_path = {{Lua(Path.Combine(dir, "data"))}}
        log = { { levels = { min = "debug" }, to = "file", filename = {{Lua(Path.Combine(dir, "prosody.log"))}} } }
        interfaces = { "127.0.0.1" }
        local_interfaces = { "127.0.0.1" }
        c2s_ports = { {{c2s}} }
        c2s_direct_tls_ports = { }
        s2s_ports = { {{s2s}} }
        s2s_direct_tls_ports = { }
        http_ports = { }
        https_ports = { }
        modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "ping", "register", "pep", "vcard_legacy", "posix" }
        c2s_require_encryption = true
        s2s_require_encryption = true
        -- With the test CA: certificates must verify (SASL EXTERNAL both ways); without: dialback over TLS.
        s2s_secure_auth = {{(caFile is null ? "false" : "true")}}
        allow_registration = true
        min_seconds_between_registrations = 0
        ssl = { certificate = {{Lua(cert)}}; key = {{Lua(key)}}; {{(caFile is null ? "" : "cafile = " + Lua(caFile) + ";")}} }
        VirtualHost {{Lua(domain)}}
        Component {{Lua("conference." + domain)}} "muc"
            restrict_room_creation = false
        """;

    private static string EjabberdConfig(string domain, string dir, int c2s, int s2s, string combined, string? caFile) => $$"""
        # Generated by Xmpp.Tests FederationPeer: loopback only, its own folder and ports.
        hosts: ["{{domain}}"]
        loglevel: debug
        certfiles: ["{{combined}}"]
        {{(caFile is null ? "" : $"ca_file: \"{caFile}\"")}}
        define_macro: {}
        listen:
          - {port: {{c2s}}, ip: "127.0.0.1", module: ejabberd_c2s, starttls_required: true}
          - {port: {{s2s}}, ip: "127.0.0.1", module: ejabberd_s2s_in}
        s2s_use_starttls: required
        s2s_access: s2s
        auth_method: internal
        registration_timeout: infinity
        acl:
          local: {user_regexp: ""}
        access_rules:
          c2s: {allow: all}
          s2s: {allow: all}
          register: {allow: all}
        modules:
          mod_disco: {}
          mod_ping: {}
          mod_roster: {}
          mod_vcard: {}
          mod_pubsub: {plugins: ["flat", "pep"]}
          mod_caps: {}
          mod_s2s_dialback: {}
          mod_muc: {host: "conference.@HOST@", access_create: all}
          mod_register: {access: register, ip_access: all, password_strength: 0, welcome_message: {subject: "", body: ""} }
        """;

    /// Lines the peer logs (at its debug level) when a link with REMOTE was authenticated, in each direction, with
    /// SASL EXTERNAL (XEP-0178) or with dialback (XEP-0220): what it says, not what we think it did.
    public (string Inbound, string Outbound) AuthenticationLogLines(string remote, bool external) => (Kind, external) switch
    {
        (PeerKind.Prosody, true) => ($"Accepting SASL EXTERNAL identity from {remote}", $"SASL EXTERNAL with {remote} succeeded"),
        // Prosody: it asks our server about our key; it sends its own key (this fixture's only peer is ours).
        (PeerKind.Prosody, false) => ($"asking {remote} if key", "sent dialback key on outgoing s2s stream"),
        (PeerKind.Ejabberd, true) => ($"Accepted inbound s2s EXTERNAL authentication {remote} -> {Domain}", $"Accepted outbound s2s EXTERNAL authentication {Domain} -> {remote}"),
        _ => ($"Accepted inbound s2s dialback authentication {remote} -> {Domain}", $"Accepted outbound s2s dialback authentication {Domain} -> {remote}"),
    };

    /// In-band registration (XEP-0077) of an account on the peer, over c2s with STARTTLS.
    public async Task RegisterAsync(string user, string password)
    {
        await using var c = await TestClient.OpenAsync(Endpoint);
        var iq = X.Parse($"<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>{user}</username><password>{password}</password></query></iq>");
        await c.SendAsync(iq);
        var answer = await c.ReadElementAsync(TimeSpan.FromSeconds(15));
        if (answer.Attr("type") != "result")
            throw new InvalidOperationException($"{Kind} refused to register {user}: {answer}\n{Log}");
    }

    /// A client of one of the peer's users, logged in with PLAIN over TLS (both peers offer it there).
    public Task<TestClient> LoginAsync(string user, string password, string resource) =>
        TestClient.ConnectAsync(Endpoint, user, password, resource, mechanism: "PLAIN");

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await _process.WaitForExitAsync(wait.Token);
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
            // Still there: SIGKILL by PID, the peer's own (unshare and sh exec into it).
            try { using var kill = Process.Start("kill", ["-KILL", _process.Id.ToString()]); kill?.WaitForExit(5000); }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
        }
        _process.Dispose();
    }
}
