using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Xmpp.Protocol;
using Xmpp.Protocol.Precis;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Server.Tls;

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
          xmppd cert generate DOMAIN            write a self-signed certificate for DOMAIN into the cert folder
          xmppd check                           validate config, certificates and ports, one line per problem

        Options (also settable in config/xmppd.json or as XMPP__KEY environment variables):
          --config FILE  --domain D[,D2]  --c2s-port P  --c2s-tls-port P  --http-port P
          --data-dir DIR  --cert-dir DIR  --listen ADDR[,ADDR]  --log-level LEVEL  --allow-registration true
          --storage embedded|postgresql  (connection string: XMPP__STORAGE__CONNECTIONSTRING or Xmpp:Storage:ConnectionString)
          --Xmpp:Section:Key=value              any other setting, e.g. --Xmpp:Limits:MaxStanzaBytes=65536
        """;

    public static async Task<int> UserAsync(IReadOnlyList<string> args, XmppServerOptions options)
    {
        if (args.Count < 2) return Fail("user: say add, passwd, del or list");
        var domains = new ServedDomains(options.Domains);
        await using var storage = StorageFactory.Open(options);
        var accounts = new AccountService(storage, new XmppServerOptionsAccessor(options), NullLogger<AccountService>.Instance);
        switch (args[1])
        {
            case "list":
                foreach (var name in (await storage.Accounts.ListAsync()).Order(StringComparer.Ordinal))
                    Console.WriteLine($"{name}@{domains.Default}");
                return 0;
            case "add" or "passwd" or "del" when args.Count >= 3:
                if (!TryUser(args[2], domains, out var user, out var problem)) return Fail(problem);
                if (args[1] == "del")
                {
                    if (!await accounts.DeleteAsync(user)) return Fail($"{user}@{domains.Default} does not exist");
                    Console.WriteLine($"deleted {user}@{domains.Default}");
                    return 0;
                }
                var password = args.Count >= 4 ? args[3] : ReadPassword();
                if (string.IsNullOrEmpty(password)) return Fail("the password is empty");
                try { SaslPrepCheck(password); }
                catch (FormatException ex) { return Fail("the password cannot be used: " + ex.Message); }
                if (args[1] == "add")
                {
                    if (!await accounts.CreateAsync(user, password)) return Fail($"{user}@{domains.Default} exists already");
                    Console.WriteLine($"created {user}@{domains.Default}");
                }
                else
                {
                    if (!await accounts.ChangePasswordAsync(user, password)) return Fail($"{user}@{domains.Default} does not exist");
                    Console.WriteLine($"password of {user}@{domains.Default} changed");
                }
                return 0;
            default:
                return Fail("user: usage is 'user add JID [PASSWORD]', 'user passwd JID [PASSWORD]', 'user del JID' or 'user list'");
        }
    }

    private static void SaslPrepCheck(string password) => Xmpp.Protocol.Sasl.SaslPrep.Prepare(password);

    private static bool TryUser(string text, ServedDomains domains, out string user, out string problem)
    {
        user = "";
        problem = "";
        try
        {
            var jid = text.Contains('@') ? Jid.Parse(text) : Jid.Create(text, domains.Default);
            if (jid.Local is null || jid.Resource is not null) { problem = $"{text} is not a bare JID like alice@{domains.Default}"; return false; }
            if (!domains.Contains(jid.Domain)) { problem = $"{jid.Domain} is not a domain this server serves ({string.Join(", ", domains.All)})"; return false; }
            user = jid.Local;
            return true;
        }
        catch (FormatException ex)
        {
            problem = $"{text} is not a valid JID: {ex.Message}";
            return false;
        }
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

    public static int Check(XmppServerOptions options, IReadOnlyList<string> loadProblems, string? configFile)
    {
        var problems = new List<string>(loadProblems);
        problems.AddRange(OptionsValidator.Validate(options));
        Console.WriteLine(configFile is null ? "config: no config file found, using defaults" : $"config: {configFile}");
        if (problems.Count == 0)
        {
            using var certs = new CertificateManager(Path.GetFullPath(options.CertDir), new ServedDomains(options.Domains).All,
                NullLogger<CertificateManager>.Instance, generateSelfSigned: false);
            foreach (var line in certs.Check())
            {
                // Warnings (self-signed, expiring soon) are worth saying but do not stop the server.
                if (line.Contains("warning:", StringComparison.Ordinal)) Console.WriteLine("warning: certificate: " + line);
                else problems.Add("certificate: " + line);
            }
            foreach (var (name, port) in new[] { ("C2sPort", options.C2sPort), ("C2sTlsPort", options.C2sTlsPort), ("HttpPort", options.HttpPort), ("Proxy65:Port", options.Proxy65.Port) })
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
