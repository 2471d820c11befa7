using Microsoft.Extensions.Configuration;

namespace Xmpp.Server.Hosting;

/// Builds configuration the .NET way: config/xmppd.json, then environment variables (XMPP__C2SPORT=...),
/// then command-line switches, each overriding the one before. Positional words (verb, JID, password) are returned apart.
public static class ConfigurationLoader
{
    public const string DefaultConfigFile = "config/xmppd.json";

    public static readonly IReadOnlyDictionary<string, string> Switches = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["--config"] = "ConfigFile",
        ["--domain"] = "Xmpp:Domains",
        ["--c2s-port"] = "Xmpp:C2sPort",
        ["--c2s-tls-port"] = "Xmpp:C2sTlsPort",
        ["--http-port"] = "Xmpp:HttpPort",
        ["--data-dir"] = "Xmpp:DataDir",
        ["--cert-dir"] = "Xmpp:CertDir",
        ["--listen"] = "Xmpp:ListenAddresses",
        ["--log-level"] = "Logging:LogLevel:Default",
        ["--allow-registration"] = "Xmpp:Registration:AllowRegistration",
        ["--storage"] = "Xmpp:Storage:Provider",
    };

    /// Options of one command rather than settings (xmppd invite create --reusable 3): handed to the command with
    /// the positional words, their values following them.
    public static readonly IReadOnlySet<string> CommandOptions = new HashSet<string>(StringComparer.Ordinal) { "--reusable", "--expires", "--inviter", "--admin", "--to" };

    public sealed record Loaded(IConfigurationRoot Configuration, IReadOnlyList<string> Positional, string? ConfigFile, List<string> Problems);

    public static Loaded Load(string[] args, IDictionary<string, string?>? overrides = null)
    {
        var positional = new List<string>();
        var switches = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var problems = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal) || a == "--" || CommandOptions.Contains(a))
            {
                positional.Add(a);
                continue;
            }
            string name = a, value;
            int eq = a.IndexOf('=');
            if (eq > 0) { name = a[..eq]; value = a[(eq + 1)..]; }
            else if (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) value = args[++i];
            else value = "true";
            if (Switches.TryGetValue(name, out var key)) switches[key] = value;
            else if (name.Contains(':')) switches[name[2..]] = value; // --Xmpp:Limits:MaxStanzaBytes=...
            else problems.Add($"Unknown option {name}; known options are {string.Join(", ", Switches.Keys)}.");
        }

        switches.TryGetValue("ConfigFile", out var configFile);
        var path = configFile ?? (File.Exists(DefaultConfigFile) ? DefaultConfigFile
            : Path.Combine(AppContext.BaseDirectory, DefaultConfigFile));
        if (configFile is not null && !File.Exists(configFile))
            problems.Add($"Config file {configFile} does not exist.");

        // Lists given on the command line replace the file's list; "a,b" gives two entries.
        var flat = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in switches)
        {
            if (key is "Xmpp:Domains" or "Xmpp:ListenAddresses")
            {
                var parts = (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                for (int i = 0; i < parts.Length; i++) flat[$"{key}:{i}"] = parts[i];
            }
            else flat[key] = value;
        }
        if (overrides is not null)
            foreach (var (k, v) in overrides) flat[k] = v;

        var builder = new ConfigurationBuilder();
        if (File.Exists(path)) builder.AddJsonFile(Path.GetFullPath(path), optional: true, reloadOnChange: false);
        builder.AddEnvironmentVariables();
        builder.AddInMemoryCollection(flat);
        var root = builder.Build();
        return new Loaded(root, positional, File.Exists(path) ? Path.GetFullPath(path) : null, problems);
    }

    public static XmppServerOptions Bind(IConfiguration configuration)
    {
        var options = new XmppServerOptions();
        configuration.GetSection(XmppServerOptions.Section).Bind(options);
        // A list bound from JSON and a list from switches would merge index by index; the switch list wins whole.
        var domains = configuration.GetSection("Xmpp:Domains").GetChildren().Select(c => c.Value).Where(v => !string.IsNullOrWhiteSpace(v)).ToList();
        options.Domains = domains.Count > 0 ? domains.Select(d => d!.Trim()).Distinct().ToList() : ["localhost"];
        return options;
    }
}
