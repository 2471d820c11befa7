using Xmpp.Server.Hosting;

namespace Xmpp.Tests.Server;

/// Settings follow .NET conventions: file, then environment, then command line.
[TestFixture]
[NonParallelizable]
public sealed class ConfigurationTests
{
    [Test]
    public void Command_line_overrides_environment_which_overrides_the_file()
    {
        var file = Path.GetTempFileName();
        File.WriteAllText(file, """
            // comments are allowed in the config file
            { "Xmpp": { "C2sPort": 1111, "C2sTlsPort": 2222, "DataDir": "from-file", "Limits": { "MaxDepth": 20 } } }
            """);
        try
        {
            Environment.SetEnvironmentVariable("XMPP__C2STLSPORT", "3333");
            Environment.SetEnvironmentVariable("XMPP__LIMITS__MAXDEPTH", "30");
            var loaded = ConfigurationLoader.Load(["run", "--config", file, "--c2s-port", "4444", "--domain", "a.example,b.example"]);
            var o = ConfigurationLoader.Bind(loaded.Configuration);
            Assert.That(loaded.Problems, Is.Empty);
            Assert.That(o.C2sPort, Is.EqualTo(4444), "command line wins");
            Assert.That(o.C2sTlsPort, Is.EqualTo(3333), "environment beats the file");
            Assert.That(o.Limits.MaxDepth, Is.EqualTo(30));
            Assert.That(o.DataDir, Is.EqualTo("from-file"));
            Assert.That(o.Domains, Is.EqualTo(new[] { "a.example", "b.example" }));
            Assert.That(loaded.Positional, Is.EqualTo(new[] { "run" }));
        }
        finally
        {
            Environment.SetEnvironmentVariable("XMPP__C2STLSPORT", null);
            Environment.SetEnvironmentVariable("XMPP__LIMITS__MAXDEPTH", null);
            File.Delete(file);
        }
    }

    [Test]
    public void The_shipped_config_file_parses_and_matches_the_defaults()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "config", "xmppd.json");
        var loaded = ConfigurationLoader.Load(["--config", path]);
        var fromFile = ConfigurationLoader.Bind(loaded.Configuration);
        var defaults = new XmppServerOptions();
        Assert.That(fromFile.C2sPort, Is.EqualTo(defaults.C2sPort));
        Assert.That(fromFile.Limits.MaxStanzaBytes, Is.EqualTo(defaults.Limits.MaxStanzaBytes));
        Assert.That(fromFile.Auth.FreeFailures, Is.EqualTo(defaults.Auth.FreeFailures));
        Assert.That(fromFile.Offline.MaxMessagesPerAccount, Is.EqualTo(defaults.Offline.MaxMessagesPerAccount));
        Assert.That(fromFile.Mam.MaxPageSize, Is.EqualTo(defaults.Mam.MaxPageSize));
        Assert.That(fromFile.Mam.MaxIds, Is.EqualTo(defaults.Mam.MaxIds));
        Assert.That(fromFile.Mam.DefaultMode, Is.EqualTo(defaults.Mam.DefaultMode));
        Assert.That(fromFile.Ping.IdleSeconds, Is.EqualTo(defaults.Ping.IdleSeconds));
        Assert.That(fromFile.StreamManagement.ResumeTimeoutSeconds, Is.EqualTo(defaults.StreamManagement.ResumeTimeoutSeconds));
        Assert.That(fromFile.StreamManagement.MaxUnackedStanzas, Is.EqualTo(defaults.StreamManagement.MaxUnackedStanzas));
        Assert.That(fromFile.HttpPort, Is.EqualTo(defaults.HttpPort));
        Assert.That(fromFile.Upload.MaxMediaBytes, Is.EqualTo(defaults.Upload.MaxMediaBytes));
        Assert.That(fromFile.Upload.MaxFileBytes, Is.EqualTo(defaults.Upload.MaxFileBytes));
        Assert.That(fromFile.StreamManagement.AckRequestIntervalMilliseconds, Is.EqualTo(defaults.StreamManagement.AckRequestIntervalMilliseconds));
        Assert.That(fromFile.StreamManagement.AckRequestEveryStanzas, Is.EqualTo(defaults.StreamManagement.AckRequestEveryStanzas));
        Assert.That(fromFile.Upload.QuotaBytesPerAccount, Is.EqualTo(defaults.Upload.QuotaBytesPerAccount));
        Assert.That(fromFile.Upload.RetentionDays, Is.EqualTo(defaults.Upload.RetentionDays));
        Assert.That(fromFile.ExternalServices.CredentialLifetimeSeconds, Is.EqualTo(defaults.ExternalServices.CredentialLifetimeSeconds));
        Assert.That(fromFile.ExternalServices.Services, Is.Empty);
        Assert.That(fromFile.Proxy65.Port, Is.EqualTo(defaults.Proxy65.Port));
        Assert.That(fromFile.Http.BoshMaxWaitSeconds, Is.EqualTo(defaults.Http.BoshMaxWaitSeconds));
        Assert.That(fromFile.Http.BoshInactivitySeconds, Is.EqualTo(defaults.Http.BoshInactivitySeconds));
        Assert.That(fromFile.Http.AllowedOrigins, Is.Empty);
        Assert.That(fromFile.Proxy65.MaxBytesPerSecond, Is.EqualTo(defaults.Proxy65.MaxBytesPerSecond));
        Assert.That(fromFile.S2s.Enabled, Is.EqualTo(defaults.S2s.Enabled));
        Assert.That(fromFile.S2s.Port, Is.EqualTo(defaults.S2s.Port));
        Assert.That(fromFile.S2s.DirectTlsPort, Is.EqualTo(defaults.S2s.DirectTlsPort));
        Assert.That(fromFile.S2s.Peers, Is.Empty);
        Assert.That(fromFile.S2s.AllowDialback, Is.EqualTo(defaults.S2s.AllowDialback));
        Assert.That(fromFile.S2s.MaxStanzaBytes, Is.EqualTo(defaults.S2s.MaxStanzaBytes));
        Assert.That(fromFile.S2s.MaxLinksPerDomain, Is.EqualTo(defaults.S2s.MaxLinksPerDomain));
        Assert.That(fromFile.S2s.MaxConnectionsPerIp, Is.EqualTo(defaults.S2s.MaxConnectionsPerIp));
        Assert.That(fromFile.S2s.ReadBytesPerSecond, Is.EqualTo(defaults.S2s.ReadBytesPerSecond));
        Assert.That(fromFile.S2s.ReadBurstBytes, Is.EqualTo(defaults.S2s.ReadBurstBytes));
        Assert.That(fromFile.S2s.DnsServers, Is.Empty);
        Assert.That(fromFile.S2s.Bidi, Is.EqualTo(defaults.S2s.Bidi));
        Assert.That(fromFile.S2s.PublicAddresses, Is.Empty);
        Assert.That(fromFile.S2s.IdleTimeoutSeconds, Is.EqualTo(defaults.S2s.IdleTimeoutSeconds));
        Assert.That(fromFile.S2s.ConnectTimeoutSeconds, Is.EqualTo(defaults.S2s.ConnectTimeoutSeconds));
        Assert.That(fromFile.S2s.SetupTimeoutSeconds, Is.EqualTo(defaults.S2s.SetupTimeoutSeconds));
        Assert.That(fromFile.S2s.MaxQueuedStanzas, Is.EqualTo(defaults.S2s.MaxQueuedStanzas));
        Assert.That(fromFile.S2s.PingIntervalSeconds, Is.EqualTo(defaults.S2s.PingIntervalSeconds));
        Assert.That(fromFile.S2s.PingTimeoutSeconds, Is.EqualTo(defaults.S2s.PingTimeoutSeconds));
        Assert.That(fromFile.Components.Enabled, Is.EqualTo(defaults.Components.Enabled));
        Assert.That(fromFile.Components.Port, Is.EqualTo(defaults.Components.Port));
        Assert.That(fromFile.Components.ListenAddresses, Is.EqualTo(defaults.Components.ListenAddresses));
        Assert.That(fromFile.Components.Domains, Is.Empty);
        Assert.That(fromFile.Components.ReadBytesPerSecond, Is.EqualTo(defaults.Components.ReadBytesPerSecond));
        Assert.That(fromFile.Components.PingIntervalSeconds, Is.EqualTo(defaults.Components.PingIntervalSeconds));
        Assert.That(fromFile.Push.Enabled, Is.EqualTo(defaults.Push.Enabled));
        Assert.That(fromFile.Push.IncludeBody, Is.EqualTo(defaults.Push.IncludeBody));
        Assert.That(fromFile.Push.MinIntervalSeconds, Is.EqualTo(defaults.Push.MinIntervalSeconds));
        Assert.That(fromFile.Push.MaxErrors, Is.EqualTo(defaults.Push.MaxErrors));
        // Whole sections, so a key added to one of them without its line in the file is caught.
        foreach (var (name, file, code) in new (string, object, object)[]
                 {
                     ("Limits", fromFile.Limits, defaults.Limits), ("RateLimits", fromFile.RateLimits, defaults.RateLimits),
                     ("Blocked", fromFile.Blocked, defaults.Blocked), ("Http", fromFile.Http, defaults.Http), ("Pep", fromFile.Pep, defaults.Pep),
                     ("ProxyProtocol", fromFile.ProxyProtocol, defaults.ProxyProtocol),
                 })
            Assert.That(System.Text.Json.JsonSerializer.Serialize(file), Is.EqualTo(System.Text.Json.JsonSerializer.Serialize(code)), name);
        Assert.That(fromFile.DrainSeconds, Is.EqualTo(defaults.DrainSeconds));
        Assert.That(OptionsValidator.Validate(fromFile), Is.Empty);
    }

    [TestCase("C2sPort", "70000", "not a port number")]
    [TestCase("ProxyProtocol:TrustedProxies:0", "haproxy.internal", "neither an IP address nor a CIDR range")]
    [TestCase("ProxyProtocol:HeaderTimeoutMilliseconds", "0", "too small")]
    [TestCase("DrainSeconds", "-1", "outside 0-300")]
    [TestCase("Limits:MaxStanzaBytes", "100", "too small")]
    [TestCase("ListenAddresses:0", "not-an-ip", "not an IP address")]
    [TestCase("Domains:0", "bad domain!", "not a valid domain")]
    [TestCase("StreamManagement:ResumeTimeoutSeconds", "-1", "too small")]
    [TestCase("StreamManagement:MaxUnackedStanzas", "5", "too small")]
    [TestCase("StreamManagement:AckRequestIntervalMilliseconds", "-1", "too small")]
    [TestCase("StreamManagement:AckRequestEveryStanzas", "0", "too small")]
    [TestCase("Upload:MaxFileBytes", "0", "too small")]
    [TestCase("Upload:Subdomain", "up.load", "one DNS label")]
    [TestCase("Upload:PublicUrl", "ftp://files.example.org", "not an http(s) URL")]
    [TestCase("Upload:RetentionDays", "-1", "keep forever")]
    [TestCase("Upload:QuotaBytesPerAccount", "-5", "unlimited")]
    [TestCase("ExternalServices:Services:0:Port", "0", "Host is required")]
    [TestCase("Http:BoshMaxWaitSeconds", "0", "too small")]
    [TestCase("Http:BoshInactivitySeconds", "2", "too small")]
    [TestCase("Http:AllowedOrigins:0", "chat.example.org", "not an origin")]
    [TestCase("Http:PublicUrl", "http://xmpp.example.org", "not an https URL")]
    [TestCase("Proxy65:Port", "70000", "not a port number")]
    [TestCase("Proxy65:MaxBytesPerSecond", "-1", "unlimited")]
    [TestCase("Mam:DefaultMode", "sometimes", "not always, roster or never")]
    [TestCase("Mam:MaxPageSize", "0", "too small")]
    [TestCase("Muc:Subdomain", "upload", "must differ")]
    [TestCase("Muc:NotifyAbsentMembers", "some", "not none, mentions or all")]
    [TestCase("Upload:Subdomain", "conference", "must differ")]
    [TestCase("S2s:Port", "70000", "not a port number")]
    [TestCase("S2s:Port", "5222", "must differ")]
    [TestCase("S2s:Peers:partner.example", "partner.example", "not host:port")]
    [TestCase("S2s:TrustedCaFile", "/nonexistent/ca.pem", "does not exist")]
    [TestCase("S2s:IdleTimeoutSeconds", "0", "too small")]
    [TestCase("S2s:MaxQueuedStanzas", "0", "too small")]
    [TestCase("S2s:AllowListOnly", "true", "AllowedDomains is empty")]
    [TestCase("S2s:StanzasPerSecondPerDomain", "-1", "is negative")]
    [TestCase("S2s:StanzaBurstPerDomain", "0", "too small")]
    [TestCase("Http:MaxConnectionsPerIp", "-1", "too small (minimum 0)")]
    [TestCase("CertificateRescanSeconds", "-1", "0 (off) or more")]
    [TestCase("Acme:Enabled", "true", "AcceptTermsOfService must be true")]
    [TestCase("Acme:Challenge", "dns-01", "is not http-01 or tls-alpn-01")]
    [TestCase("Components:Enabled", "true", "Domains is empty")]
    [TestCase("Push:MaxErrors", "0", "too small")]
    public void Invalid_settings_give_one_clear_line(string key, string value, string expected)
    {
        var loaded = ConfigurationLoader.Load(["--config", "/nonexistent.json"], new Dictionary<string, string?> { ["Xmpp:" + key] = value });
        var problems = OptionsValidator.Validate(ConfigurationLoader.Bind(loaded.Configuration));
        Assert.That(problems, Has.Exactly(1).Contains(expected));
    }

    [TestCase("localhost", "x", "a served domain cannot also be a component")]
    [TestCase("conference.localhost", "x", "already hosts a service")]
    [TestCase("bridge.localhost", "", "Secret is required")]
    [TestCase("bad domain!", "x", "not a valid domain")]
    public void Invalid_component_domains_give_one_clear_line(string domain, string secret, string expected)
    {
        var loaded = ConfigurationLoader.Load(["--config", "/nonexistent.json"], new Dictionary<string, string?>
        {
            ["Xmpp:Domains:0"] = "localhost",
            ["Xmpp:Components:Enabled"] = "true",
            [$"Xmpp:Components:Domains:{domain}:Secret"] = secret,
        });
        var problems = OptionsValidator.Validate(ConfigurationLoader.Bind(loaded.Configuration));
        Assert.That(problems, Has.Exactly(1).Contains(expected));
    }
}
