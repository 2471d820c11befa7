using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Xmpp.Protocol.Precis;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules;
using Xmpp.Server.Tls;
using Xmpp.Storage;

namespace Xmpp.Server.Cli;

/// The admin commands of the single binary. Each prints one line per result or problem and returns an exit code.
public static class AdminCommands
{
    public const string Usage = """
        xmppd — an XMPP server in one binary

        Usage:
          xmppd [run] [options]                 start the server
          xmppd user add JID [PASSWORD]         create an account (password read from stdin when omitted)
          xmppd user passwd JID [PASSWORD]      set a new password
          xmppd user del JID                    delete an account and its data
          xmppd user list                       list accounts
          xmppd session list                    list the sessions of the running server
          xmppd session kick JID                end a session (full JID) or all of an account's (bare JID)
          xmppd room list                       list chat rooms (persistent and, when the server runs, temporary)
          xmppd room destroy JID [REASON]       destroy a room: occupants are told, its settings and archive deleted
          xmppd stats                           connections, sessions, accounts, rooms, uptime
          xmppd backup DIR                      copy the data folder into a new or empty DIR, while the server runs too
          xmppd block add|del JID-or-DOMAIN     block a bare JID or a domain (with its subdomains) server-wide, or unblock it
          xmppd block list                      the server-wide block list (configured and added entries)
          xmppd report list|clear               abuse and spam reports users filed (XEP-0377), oldest first, or remove them
          xmppd invite create [--reusable N] [--expires 7d] [--inviter JID] [--admin]
                                                an invitation link: web sign-up page and xmpp: URI
          xmppd restore DIR                     with the server stopped, replace the data folder's contents with a backup's
                                                (the replaced data is kept in DATADIR.before-restore-TIMESTAMP)
          xmppd migrate --to postgresql CONNSTRING
          xmppd migrate --to embedded DIR       with the server stopped, copy all data from the configured storage into
                                                the other kind; repeatable, resumes where it stopped, ends with counts
          xmppd cert generate DOMAIN            write a self-signed certificate for DOMAIN into the cert folder
          xmppd check                           validate config, certificates and ports, one line per problem

        Options (also settable in config/xmppd.json or as XMPP__KEY environment variables):
          --config FILE  --domain D[,D2]  --c2s-port P  --c2s-tls-port P  --http-port P
          --data-dir DIR  --cert-dir DIR  --listen ADDR[,ADDR]  --log-level LEVEL  --allow-registration true
          --storage embedded|postgresql  (connection string: XMPP__STORAGE__CONNECTIONSTRING or Xmpp:Storage:ConnectionString)
          --Xmpp:Section:Key=value              any other setting, e.g. --Xmpp:Limits:MaxStanzaBytes=65536
        """;

    /// user, session, room and stats: carried out by the running server over its admin socket, or, when none runs, on
    /// the store opened here under the data folder's lock, so two processes never write the same files (issue 19).
    public static async Task<int> AdminAsync(IReadOnlyList<string> words, XmppServerOptions options)
    {
        var args = words.ToList();
        if (args.Count == 3 && args[0] == "user" && args[1] is "add" or "passwd")
            args.Add(ReadPassword());
        // The server has a working folder of its own: a relative backup folder means one relative to ours.
        if (args.Count == 2 && args[0] == "backup")
            args[1] = Path.GetFullPath(args[1]);
        var dir = Path.GetFullPath(options.DataDir);
        var socket = AdminSocket.PathFor(options);
        // A server that is starting holds the lock a moment before its socket answers, and another admin command
        // may hold it for the length of one command: both are waited for, briefly.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            AdminReply? reply;
            try
            {
                // A backup takes as long as the copy does; anything else answers within a minute.
                reply = await AdminSocket.TrySendAsync(socket, args, args[0] == "backup" ? Timeout.InfiniteTimeSpan : TimeSpan.FromMinutes(1));
            }
            catch (UnauthorizedAccessException)
            {
                return Fail($"the server runs, but this user may not open its admin socket {socket}: run the command as the user the server runs as");
            }
            catch (Exception ex) when (ex is IOException or SocketException or System.Text.Json.JsonException or OperationCanceledException)
            {
                return Fail($"the server did not answer on {socket}: {ex.Message}");
            }
            if (reply is not null)
            {
                Console.Out.Write(reply.Output);
                Console.Error.Write(reply.Error);
                return reply.Exit;
            }
            DataDirLock? held;
            int? holder;
            try
            {
                if (!DataDirLock.TryAcquire(dir, out held, out holder)) held = null;
            }
            catch (DataDirLockException ex)
            {
                return Fail(ex.Message);
            }
            if (held is not null)
            {
                using (held)
                    return await OfflineAsync(args, options, dir);
            }
            if (DateTime.UtcNow > deadline)
                return Fail($"the data folder {dir} is in use by {(holder is { } pid ? "PID " + pid : "another process")}, and nothing answers on {socket}; "
                    + "if that is an xmppd starting or stopping, try again; otherwise stop it");
            await Task.Delay(200);
        }
    }

    /// The store opened directly, while this process holds the data folder's lock.
    private static async Task<int> OfflineAsync(IReadOnlyList<string> args, XmppServerOptions options, string dir)
    {
        // The server's own services without its listeners or hosted services: modules are built and registered so that
        // user del removes the account's data (roster, archives, PEP, uploads) as it does in the running server.
        var services = new ServiceCollection();
        services.AddLogging();
        // The command works on the shared database alone: it does not join the cluster as a node.
        options.Cluster.Enabled = false;
        XmppHost.AddServices(services, options);
        await using var provider = services.BuildServiceProvider();
        var accounts = provider.GetRequiredService<AccountService>();
        accounts.SetDeletedHandlers(provider.GetRequiredService<ModuleRegistry>().AccountDeleted);
        var blocks = provider.GetRequiredService<Limits.BlockList>();
        await blocks.LoadAsync();
        var target = new AdminTarget(provider.GetRequiredService<IStorage>(), accounts, options, blocks,
            provider.GetRequiredService<Modules.Blocking.AbuseReports>(), live: null);
        var exit = await new AdminOperations(target, Console.Out, Console.Error).RunAsync(args);
        // What the command queued in the background (an archive's deletion) is durable before the lock is let go.
        await target.Storage.FlushAsync();
        return exit;
    }

    private static string ReadPassword()
    {
        if (Console.IsInputRedirected) return Console.ReadLine() ?? "";
        Console.Write("Password: ");
        var chars = new List<char>();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter) break;
            if (key.Key == ConsoleKey.Backspace) { if (chars.Count > 0) chars.RemoveAt(chars.Count - 1); continue; }
            chars.Add(key.KeyChar);
        }
        Console.WriteLine();
        return new string([.. chars]);
    }

    public static int CertGenerate(IReadOnlyList<string> args, XmppServerOptions options)
    {
        if (args.Count < 3 || args[1] != "generate") return Fail("cert: usage is 'cert generate DOMAIN'");
        string domain;
        try { domain = Precis.PrepareDomain(args[2]); }
        catch (FormatException ex) { return Fail($"{args[2]} is not a valid domain: {ex.Message}"); }
        var dir = Path.GetFullPath(options.CertDir);
        using var cert = CertificateManager.GenerateSelfSigned(domain, dir);
        Console.WriteLine($"wrote a self-signed certificate for {domain} to {Path.Combine(dir, domain)} (valid until {cert.NotAfter:yyyy-MM-dd})");
        return 0;
    }

    public static async Task<int> CheckAsync(XmppServerOptions options, IReadOnlyList<string> loadProblems, string? configFile)
    {
        var problems = new List<string>(loadProblems);
        problems.AddRange(OptionsValidator.Validate(options));
        Console.WriteLine(configFile is null ? "config: no config file found, using defaults" : $"config: {configFile}");
        if (problems.Count == 0)
        {
            using var certs = new CertificateManager(Path.GetFullPath(options.CertDir), new ServedDomains(options.Domains).All,
                NullLogger<CertificateManager>.Instance, generateSelfSigned: false);
            bool certificatesOk = true;
            foreach (var line in certs.Check())
            {
                // Warnings (self-signed, expiring soon) are worth saying but do not stop the server.
                if (line.Contains("warning:", StringComparison.Ordinal)) Console.WriteLine("warning: certificate: " + line);
                else { problems.Add("certificate: " + line); certificatesOk = false; }
            }
            if (certificatesOk)
                foreach (var (line, problem) in ServiceCertificateProblems(options, certs))
                    if (problem) problems.Add(line);
                    else Console.WriteLine("warning: " + line);
            var dns = new DnsCheck(options);
            Console.WriteLine(await dns.RunAsync());
            foreach (var w in dns.Warnings) Console.WriteLine("warning: " + w);
            problems.AddRange(dns.Problems);
            var ports = new List<(string, int)> { ("C2sPort", options.C2sPort), ("C2sTlsPort", options.C2sTlsPort), ("HttpPort", options.HttpPort), ("Proxy65:Port", options.Proxy65.Port) };
            if (options.S2s.Enabled) ports.AddRange([("S2s:Port", options.S2s.Port), ("S2s:DirectTlsPort", options.S2s.DirectTlsPort)]);
            foreach (var (name, port) in ports)
                if (port > 0 && PortProblem(port) is { } p) problems.Add($"Xmpp:{name}: {p}");
            if (!options.Storage.IsPostgreSql) problems.AddRange(DataDirProblems(options.DataDir));
            var (storageOk, storageLine) = StorageFactory.Check(options);
            if (storageOk) Console.WriteLine(storageLine);
            else problems.Add(storageLine);
        }
        foreach (var p in problems) Console.WriteLine("problem: " + p);
        if (problems.Count == 0) Console.WriteLine($"ok: domains {string.Join(", ", options.Domains)}; ports {options.C2sPort}/{options.C2sTlsPort}; " +
            (options.Storage.IsPostgreSql ? "data in PostgreSQL" : $"data in {Path.GetFullPath(options.DataDir)}"));
        return problems.Count == 0 ? 0 : 1;
    }

    /// The service subdomains (conference., upload., proxy.) are reached by other servers over TLS with the certificate
    /// the server picks for them by SNI: one of the served domains' certificates that names them (RFC 6125 §6.4: a DNS-ID,
    /// a wildcard only as the whole left-most label), else the default one. Only the rooms must be reachable from afar
    /// (a problem); the upload and proxy services serve local users (a warning).
    private static IEnumerable<(string Line, bool Problem)> ServiceCertificateProblems(XmppServerOptions options, CertificateManager certs)
    {
        if (!options.S2s.Enabled) yield break;
        bool loaded = true;
        try { certs.LoadAll(); }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or System.Security.Cryptography.CryptographicException)
        {
            loaded = false; // the served domains' own lines say what is wrong
        }
        if (!loaded) yield break;
        foreach (var domain in new ServedDomains(options.Domains).All)
            foreach (var service in DnsCheck.ServiceDomains(options, domain))
            {
                var presented = certs.Resolve(service);
                var names = DnsNames.Of(presented.Certificate);
                if (!DnsNames.Covers(names, DnsNames.Normalize(service)))
                    yield return ($"certificate: {service}: the certificate other servers get for it ({presented.Source.CertificatePath}) names "
                                  + $"{(names.Count == 0 ? "no DNS names" : string.Join(", ", names))}, not {service}; servers that verify "
                                  + $"certificates refuse it: add {service} or *.{domain} to the certificate",
                        options.Muc.Enabled && service == options.Muc.Subdomain + "." + domain);
            }
    }

    private static string? PortProblem(int port)
    {
        try
        {
            using var l = new TcpListener(IPAddress.Any, port);
            l.Start();
            return null;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            return $"port {port} is already in use (is the server, or another one, running?)";
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AccessDenied)
        {
            return $"port {port} needs privileges this user does not have";
        }
    }

    private static IEnumerable<string> DataDirProblems(string dataDir)
    {
        var full = Path.GetFullPath(dataDir);
        string? problem = null;
        try
        {
            Directory.CreateDirectory(full);
            var probe = Path.Combine(full, ".write-test-" + Environment.ProcessId);
            File.WriteAllText(probe, "x");
            File.Delete(probe);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problem = $"Xmpp:DataDir: {full} is not writable ({ex.Message})";
        }
        if (problem is not null) yield return problem;
    }

    public static int Fail(string message)
    {
        Console.Error.WriteLine("error: " + message);
        return 1;
    }
}
