using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// /metrics in the Prometheus text format, scraped over HTTPS while clients log in and chat, and /health and /ready.
[TestFixture]
public sealed class MetricsTests
{
    private static HttpClient Http(TestServer s) => new(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true })
    {
        BaseAddress = new Uri($"https://127.0.0.1:{s.HttpPort}"),
        Timeout = TimeSpan.FromSeconds(20),
    };

    /// The value of one sample, e.g. Sample(text, "xmppd_logins_total", "result=\"success\"").
    private static double Sample(string text, string name, string? label = null)
    {
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith('#') || !line.StartsWith(name, StringComparison.Ordinal)) continue;
            var rest = line[name.Length..];
            if (rest.Length == 0 || (rest[0] != ' ' && rest[0] != '{')) continue;
            if (label is not null && !rest.Contains(label, StringComparison.Ordinal)) continue;
            return double.Parse(rest[(rest.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        }
        return double.NaN;
    }

    [Test]
    public async Task Requests_refused_by_an_abuse_limit_or_the_block_list_are_counted_by_limit()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:RateLimits:IqPerSecond"] = "0.01";
            o["Xmpp:RateLimits:IqBurst"] = "3";
            o["Xmpp:Blocked:Domains:0"] = "spam.example";
        });
        await server.AddUserAsync("alice", "alice-pw");
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc", sendPresence: true);
        for (int i = 0; i < 3; i++) await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        for (int i = 0; i < 2; i++)
        {
            var refused = await alice.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            Assert.That(refused.Attr("type"), Is.EqualTo("error"), refused.ToString());
        }
        await alice.SendAsync("<message to='x@spam.example' id='s1'><body>hi</body></message>");
        await alice.ReceiveAsync(e => e.Attr("id") == "s1");

        using var http = Http(server);
        var text = await http.GetStringAsync("/metrics");
        Assert.That(Sample(text, "xmppd_limits_refused_total", "limit=\"iq-rate\""), Is.EqualTo(2), text);
        Assert.That(Sample(text, "xmppd_limits_refused_total", "limit=\"blocked\""), Is.EqualTo(1), text);
    }

    [Test]
    public async Task A_scrape_counts_logins_stanzas_routing_outcomes_connections_and_storage_commits()
    {
        await using var server = await TestServer.StartAsync(configure: TestServer.WithHttp);
        await server.AddUserAsync("alice", "alice-pw");
        await server.AddUserAsync("bob", "bob-pw");
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-pw", "pc", sendPresence: true);
        await using (var wrong = await TestClient.OpenAsync(server))
            await wrong.TryAuthenticateAsync("alice", "not-the-password");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m1'><body>you are offline</body></message>");
        await alice.SendAsync("<message to='nobody@localhost' type='chat' id='m2'><body>nobody is here</body></message>");
        await alice.ReceiveAsync(e => e.Attr("id") == "m2" && e.Attr("type") == "error");
        await using var bob = await TestClient.ConnectAsync(server, "bob", "bob-pw", "phone", sendPresence: true);
        await bob.ReceiveAsync(e => e.Attr("id") == "m1");
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='m3'><body>now you are here</body></message>");
        await bob.ReceiveAsync(e => e.Attr("id") == "m3");

        using var http = Http(server);
        var response = await http.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/plain"));
        TestContext.Out.WriteLine(text);

        Assert.That(Sample(text, "xmppd_logins_total", "result=\"success\""), Is.EqualTo(2));
        Assert.That(Sample(text, "xmppd_logins_total", "result=\"failure\""), Is.EqualTo(1));
        Assert.That(Sample(text, "xmppd_stanzas_received_total", "kind=\"message\""), Is.EqualTo(3));
        Assert.That(Sample(text, "xmppd_stanzas_sent_total", "kind=\"message\""), Is.GreaterThanOrEqualTo(3));
        Assert.That(Sample(text, "xmppd_messages_routed_total", "outcome=\"stored\""), Is.EqualTo(1));
        Assert.That(Sample(text, "xmppd_messages_routed_total", "outcome=\"delivered\""), Is.GreaterThanOrEqualTo(1));
        Assert.That(Sample(text, "xmppd_messages_routed_total", "outcome=\"bounced\""), Is.EqualTo(1));
        Assert.That(Sample(text, "xmppd_connections", "transport=\"starttls\""), Is.EqualTo(2));
        Assert.That(Sample(text, "xmppd_sessions"), Is.EqualTo(2));
        // One series per resumed="true"/"false" (TLS session resumption, Tls/SharedTlsContexts.cs).
        var handshakes = Sample(text, "xmppd_tls_handshake_duration_seconds_count", "resumed=\"false\"");
        var resumed = Sample(text, "xmppd_tls_handshake_duration_seconds_count", "resumed=\"true\"");
        Assert.That((double.IsNaN(handshakes) ? 0 : handshakes) + (double.IsNaN(resumed) ? 0 : resumed), Is.GreaterThanOrEqualTo(3));
        Assert.That(Sample(text, "xmppd_storage_commit_duration_seconds_count"), Is.GreaterThanOrEqualTo(1));
        Assert.That(text, Does.Contain("# TYPE xmppd_logins_total counter"));
    }

    [Test]
    public async Task Metrics_need_the_token_when_one_is_set_and_health_and_ready_answer()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:Metrics:Token"] = "s3cret-scrape-token";
        });
        using var http = Http(server);
        Assert.That((await http.GetAsync("/metrics")).StatusCode, Is.EqualTo(HttpStatusCode.Forbidden), "loopback alone is not enough with a token");
        var wrong = new HttpRequestMessage(HttpMethod.Get, "/metrics") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", "s3cret-scrape-tokeN") } };
        Assert.That((await http.SendAsync(wrong)).StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        var right = new HttpRequestMessage(HttpMethod.Get, "/metrics") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", "s3cret-scrape-token") } };
        var ok = await http.SendAsync(right);
        Assert.That(ok.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await ok.Content.ReadAsStringAsync(), Does.Contain("xmppd_sessions"));

        Assert.That((await http.GetAsync("/health")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var ready = await http.GetAsync("/ready");
        Assert.That(ready.StatusCode, Is.EqualTo(HttpStatusCode.OK), await ready.Content.ReadAsStringAsync());
    }
}
