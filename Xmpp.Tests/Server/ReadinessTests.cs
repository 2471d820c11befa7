using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Xmpp.Server.Metrics;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// GET /ready as a load balancer's health check sees it (HAProxy's "option httpchk": HTTP/1.0 without Host, or
/// HTTP/1.1 with one), and the drain on a graceful stop (Xmpp:DrainSeconds): 503 while the listeners still accept.
[TestFixture, Category("Listener")]
public sealed class ReadinessTests
{
    /// One request on a fresh TLS connection, answered and closed: the status code and the body.
    private static async Task<(int Status, string Body)> RequestAsync(int port, string request)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        using var ssl = new SslStream(tcp.GetStream());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        }, cts.Token);
        await ssl.WriteAsync(Encoding.ASCII.GetBytes(request), cts.Token);
        var answer = new MemoryStream();
        await ssl.CopyToAsync(answer, cts.Token);
        var text = Encoding.ASCII.GetString(answer.ToArray());
        var status = int.Parse(text.Split(' ')[1]);
        return (status, text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]);
    }

    private const string Http10 = "GET /ready HTTP/1.0\r\n\r\n";
    private const string Http11 = "GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

    [TestCase(Http10)]
    [TestCase(Http11)]
    public async Task Ready_answers_a_load_balancers_check_with_200(string request)
    {
        await using var server = await TestServer.StartAsync(configure: TestServer.WithHttp);
        var (status, body) = await RequestAsync(server.HttpPort, request);
        Assert.That(status, Is.EqualTo(200));
        Assert.That(body, Does.Contain("ready"));
    }

    private sealed class Failing : IReadinessCheck
    {
        public volatile string? Problem;
        public ValueTask<string?> ProblemAsync(CancellationToken cancellationToken) => ValueTask.FromResult(Problem);
    }

    [Test]
    public async Task A_failing_readiness_check_makes_ready_answer_503_with_its_reason_and_health_stays_200()
    {
        var check = new Failing { Problem = "redis unreachable" };
        await using var server = await TestServer.StartAsync(configure: TestServer.WithHttp,
            services: s => s.AddSingleton<IReadinessCheck>(check));
        var (status, body) = await RequestAsync(server.HttpPort, Http10);
        Assert.That((status, body.Trim()), Is.EqualTo((503, "redis unreachable")));
        Assert.That((await RequestAsync(server.HttpPort, "GET /health HTTP/1.0\r\n\r\n")).Status, Is.EqualTo(200));
        check.Problem = null;
        Assert.That((await RequestAsync(server.HttpPort, Http10)).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task A_stopping_node_answers_503_while_it_still_accepts_clients_then_closes_them()
    {
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:DrainSeconds"] = "5";
        });
        await server.AddUserAsync("alice", "alice-password");
        await using var alice = await TestClient.ConnectAsync(server, "alice", "alice-password");
        var clock = Stopwatch.StartNew();
        var stop = server.StopAsync();
        // During the drain: /ready says stopping, a new client still gets a stream, the old one stays connected.
        var (status, body) = await RequestAsync(server.HttpPort, Http10);
        Assert.That((status, body.Trim()), Is.EqualTo((503, "stopping")));
        await using var late = await TestClient.OpenAsync(server);
        Assert.That(late.Features, Is.Not.Null);
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(4.5)), "the checks above ran inside the drain");
        Assert.That(alice.StreamEnded, Is.False);
        // After it: both streams end with system-shutdown (RFC 6120 §4.9.3.20), and the stop completes.
        var error = await alice.ReceiveAsync(e => e.Name == "error", TimeSpan.FromSeconds(10));
        Assert.That(error.Is("error", Xmpp.Protocol.Ns.Streams) && error.FirstElement?.Name == "system-shutdown", error.ToString());
        Assert.That(clock.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(4.9)), "closed only after the drain");
        await stop.WaitAsync(TimeSpan.FromSeconds(20));
    }
}
