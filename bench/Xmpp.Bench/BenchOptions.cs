using System.Globalization;
using System.Net;

namespace Xmpp.Bench;

/// Settings of one run, from `--key value` arguments; every default is small enough for a laptop.
public sealed class BenchOptions
{
    public string Scenario { get; set; } = "";
    public string Server { get; set; } = "server";
    public IPAddress Host { get; set; } = IPAddress.Loopback;
    public int Port { get; set; } = 5222;
    public int TlsPort { get; set; } = 5223;
    public string Domain { get; set; } = "localhost";
    public bool DirectTls { get; set; }
    public bool StreamManagement { get; set; }
    public bool SpreadSources { get; set; } = true;
    /// "basic" (TLS, SCRAM-SHA-1, bind, presence) or "messenger" (a phone client's whole session start).
    public string Client { get; set; } = "basic";
    /// Offer earlier TLS sessions for resumption (.NET's default); --no-tls-resume makes every handshake a full one.
    public bool TlsResume { get; set; } = true;

    public int Users { get; set; } = 100;
    public string UserPrefix { get; set; } = "u";

    /// Resources of the idle scenario's sessions: {prefix}{i}. Several generators holding sessions of the same accounts
    /// need different prefixes, or each bind replaces the other generator's session with the same full JID.
    public string ResourcePrefix { get; set; } = "idle";
    public string Password { get; set; } = "bench-password";
    public int Concurrency { get; set; } = 50;
    public int Sessions { get; set; } = 100;
    public int ServerPid { get; set; }
    /// Hard limit for the whole scenario: it stops by itself and reports what it measured.
    public int MaxSeconds { get; set; } = 120;
    public int LoginTimeoutSeconds { get; set; } = 30;

    // Idle sessions.
    public int IdleSeconds { get; set; } = 10;

    // 1:1 throughput.
    public int Online { get; set; } = 100;
    public double StartRate { get; set; } = 200;
    public double RateFactor { get; set; } = 1.5;

    // Bisection steps between the last rate that held and the first that failed.
    public int RefineSteps { get; set; } = 2;
    public double MaxRate { get; set; } = 100_000;
    public double StepSeconds { get; set; } = 3;
    public double FixedRate { get; set; } = 200;
    public double FixedSeconds { get; set; } = 5;
    /// Unmeasured seconds at the fixed rate before the fixed-rate step (0: none).
    public double WarmupSeconds { get; set; } = 2;
    public double LatencyLimitMs { get; set; } = 100;

    // federation: the receivers' server (users of the same names registered there); senders stay on Port/Domain.
    public int PeerPort { get; set; }
    public int PeerTlsPort { get; set; }
    public string PeerDomain { get; set; } = "";

    // Offline spool.
    public int Messages { get; set; } = 1000;
    public int Receivers { get; set; } = 20;
    public int Senders { get; set; } = 10;

    // mam-page
    public int Queries { get; set; } = 200;

    public Target Target => new(Host, Port, TlsPort, Domain, DirectTls, StreamManagement, Client == "messenger", TlsResume);

    public Target PeerTarget => new(Host, PeerPort, PeerTlsPort, PeerDomain, DirectTls, StreamManagement, Client == "messenger", TlsResume);

    public string UserName(int i) => UserPrefix + i.ToString(CultureInfo.InvariantCulture);

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        int i = 0;
        if (args.Length > 0 && !args[0].StartsWith("--")) o.Scenario = args[i++];
        for (; i < args.Length; i++)
        {
            string key = args[i];
            if (!key.StartsWith("--")) throw new ArgumentException("unexpected argument " + key);
            key = key[2..];
            if (key == "direct-tls") { o.DirectTls = true; continue; }
            if (key == "sm") { o.StreamManagement = true; continue; }
            if (key == "no-spread") { o.SpreadSources = false; continue; }
            if (key == "no-tls-resume") { o.TlsResume = false; continue; }
            if (i + 1 >= args.Length) throw new ArgumentException($"--{key} needs a value");
            string v = args[++i];
            switch (key)
            {
                case "scenario": o.Scenario = v; break;
                case "server": o.Server = v; break;
                case "client": o.Client = v; break;
                case "host": o.Host = IPAddress.Parse(v); break;
                case "port": o.Port = Int(v); break;
                case "tls-port": o.TlsPort = Int(v); break;
                case "domain": o.Domain = v; break;
                case "users": o.Users = Int(v); break;
                case "user-prefix": o.UserPrefix = v; break;
                case "resource-prefix": o.ResourcePrefix = v; break;
                case "password": o.Password = v; break;
                case "concurrency": o.Concurrency = Int(v); break;
                case "sessions": o.Sessions = Int(v); break;
                case "server-pid": o.ServerPid = Int(v); break;
                case "max-seconds": o.MaxSeconds = Int(v); break;
                case "login-timeout": o.LoginTimeoutSeconds = Int(v); break;
                case "idle-seconds": o.IdleSeconds = Int(v); break;
                case "online": o.Online = Int(v); break;
                case "start-rate": o.StartRate = Dbl(v); break;
                case "rate-factor": o.RateFactor = Dbl(v); break;
                case "refine-steps": o.RefineSteps = (int)Dbl(v); break;
                case "max-rate": o.MaxRate = Dbl(v); break;
                case "step-seconds": o.StepSeconds = Dbl(v); break;
                case "fixed-rate": o.FixedRate = Dbl(v); break;
                case "fixed-seconds": o.FixedSeconds = Dbl(v); break;
                case "warmup-seconds": o.WarmupSeconds = Dbl(v); break;
                case "latency-limit-ms": o.LatencyLimitMs = Dbl(v); break;
                case "peer-port": o.PeerPort = Int(v); break;
                case "peer-tls-port": o.PeerTlsPort = Int(v); break;
                case "peer-domain": o.PeerDomain = v; break;
                case "messages": o.Messages = Int(v); break;
                case "receivers": o.Receivers = Int(v); break;
                case "senders": o.Senders = Int(v); break;
                case "queries": o.Queries = Int(v); break;
                default: throw new ArgumentException("unknown option --" + key);
            }
        }
        if (!IPAddress.IsLoopback(o.Host)) throw new ArgumentException("the load generator only targets loopback addresses");
        if (o.Users <= 0 || o.Concurrency <= 0) throw new ArgumentException("--users and --concurrency must be positive");
        if (o.Client is not ("basic" or "messenger")) throw new ArgumentException("--client is basic or messenger");
        if (o.RateFactor <= 1) throw new ArgumentException("--rate-factor must be above 1");
        return o;
    }

    private static int Int(string v) => int.Parse(v, CultureInfo.InvariantCulture);
    private static double Dbl(string v) => double.Parse(v, CultureInfo.InvariantCulture);
}
