using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Xmpp.Server.Modules.Invites;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Slowloris on the HTTPS listener over real sockets: a client that sends its headers and then trickles the body (an
/// upload PUT, a BOSH POST, a sign-up form POST) is cut off by Http:MinRequestBodyBytesPerSecond (240 bytes/s after a
/// 5 s grace, Kestrel's MinRequestBodyDataRate), and one that trickles its headers by Http:RequestHeadersTimeoutSeconds.
/// Each trickle would go on for minutes: the tests fail if the limit is taken away.
[TestFixture, Category("Abuse")]
public sealed class HttpSlowlorisTests
{
    // Longer than any limit under test; a trickle still going by then was not cut off.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.StartAsync(configure: o =>
        {
            TestServer.WithHttp(o);
            o["Xmpp:Http:RequestHeadersTimeoutSeconds"] = "2";
        });
        await _server.AddUserAsync("alice", "alice-pw");
    }

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    private sealed record Outcome(TimeSpan Elapsed, string Answer, int Sent);

    /// Sends head at once, then body one byte per interval (or chunk bytes per interval) until the server ends the
    /// connection, the body is all sent, or Patience runs out. Elapsed counts from the end of head.
    private async Task<Outcome> TrickleAsync(string head, byte[] body, TimeSpan interval, int chunk = 1)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(_server.Host, _server.HttpPort);
        await using var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        });
        await ssl.WriteAsync(Encoding.ASCII.GetBytes(head));
        await ssl.FlushAsync();
        var clock = Stopwatch.StartNew();
        var answer = new MemoryStream();
        var reader = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            using var cts = new CancellationTokenSource(Patience);
            try
            {
                int n;
                while ((n = await ssl.ReadAsync(buffer, cts.Token)) > 0)
                {
                    answer.Write(buffer, 0, n);
                    // A complete answer to a complete body ends the trickle too (the control case).
                    if (Encoding.ASCII.GetString(answer.ToArray()).Contains("\r\n\r\n", StringComparison.Ordinal) && !IsTimeout(answer)) break;
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // A reset counts as closed too; a cancel is Patience running out, which the caller sees in Elapsed.
            }
            return clock.Elapsed;
        });
        int sent = 0;
        while (!reader.IsCompleted && sent < body.Length && clock.Elapsed < Patience)
        {
            try
            {
                int n = Math.Min(chunk, body.Length - sent);
                await ssl.WriteAsync(body.AsMemory(sent, n));
                await ssl.FlushAsync();
                sent += n;
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
            {
                break;
            }
            await Task.WhenAny(reader, Task.Delay(interval));
        }
        var elapsed = await reader;
        return new Outcome(elapsed, Encoding.ASCII.GetString(answer.ToArray()), sent);
    }

    private static bool IsTimeout(MemoryStream answer) => Encoding.ASCII.GetString(answer.ToArray()).StartsWith("HTTP/1.1 408", StringComparison.Ordinal);

    private static void AssertCutOffByBodyRate(Outcome outcome, int bodyLength)
    {
        // Not before the 5 s grace (so it is the rate, not another limit), and well before the trickle would end.
        Assert.That(outcome.Elapsed, Is.InRange(TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(12)), outcome.Answer);
        Assert.That(outcome.Sent, Is.LessThan(bodyLength));
        // Kestrel answers 408 while the response has not started, else it just closes.
        Assert.That(outcome.Answer.Length == 0 || outcome.Answer.StartsWith("HTTP/1.1 408", StringComparison.Ordinal), outcome.Answer);
    }

    private async Task<(string Put, string Get)> SlotAsync(string name, int size)
    {
        await using var alice = await TestClient.ConnectAsync(_server, "alice", "alice-pw", "pc");
        return await UploadClient.SlotAsync(alice, _server, name, size, "application/octet-stream");
    }

    private static string PutHead(string put, int size) =>
        $"PUT {new Uri(put).PathAndQuery} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n";

    [Test]
    public async Task An_upload_body_trickled_below_the_minimum_rate_is_cut_off_and_nothing_is_stored()
    {
        const int size = 10_000;
        var (put, get) = await SlotAsync("slow.bin", size);

        var outcome = await TrickleAsync(PutHead(put, size), new byte[size], TimeSpan.FromMilliseconds(500));

        AssertCutOffByBodyRate(outcome, size);
        using var http = UploadClient.Http();
        Assert.That((await http.GetAsync(get)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task An_upload_body_slow_but_above_the_minimum_rate_goes_through()
    {
        // The control: about 1,000 bytes/s for 8 s, past the grace, is slow but not abuse.
        const int size = 8_000;
        var (put, get) = await SlotAsync("steady.bin", size);

        var outcome = await TrickleAsync(PutHead(put, size), new byte[size], TimeSpan.FromMilliseconds(500), chunk: 500);

        Assert.That(outcome.Sent, Is.EqualTo(size));
        Assert.That(outcome.Answer, Does.StartWith("HTTP/1.1 201"));
        Assert.That(outcome.Elapsed, Is.GreaterThan(TimeSpan.FromSeconds(6)), "the upload outlasted the grace");
        using var http = UploadClient.Http();
        Assert.That((await UploadClient.DownloadAsync(http, get)).Length, Is.EqualTo(size));
    }

    [Test]
    public async Task A_bosh_request_body_trickled_below_the_minimum_rate_is_cut_off()
    {
        var body = Encoding.UTF8.GetBytes("<body rid='1' xmlns='http://jabber.org/protocol/httpbind' to='localhost' xml:lang='en' wait='60' hold='1' " +
            "ver='1.6' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>");

        var outcome = await TrickleAsync("POST /http-bind HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; charset=utf-8\r\n" +
            $"Content-Length: {body.Length}\r\n\r\n", body, TimeSpan.FromMilliseconds(500));

        AssertCutOffByBodyRate(outcome, body.Length);
    }

    [Test]
    public async Task A_sign_up_form_post_trickled_below_the_minimum_rate_is_cut_off_and_creates_no_account()
    {
        var (_, token) = await _server.Get<InviteStore>().CreateAsync(InviteKind.Account, "localhost", "alice@localhost", TimeSpan.FromDays(1));
        var body = Encoding.ASCII.GetBytes("form-token=00000000000000000000000000000000&username=slowpoke&password=slow-password-1&password2=slow-password-1");

        var outcome = await TrickleAsync($"POST /invite/{token} HTTP/1.1\r\nHost: localhost:{_server.HttpPort}\r\n" +
            $"Origin: https://localhost:{_server.HttpPort}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {body.Length}\r\n\r\n",
            body, TimeSpan.FromMilliseconds(500));

        AssertCutOffByBodyRate(outcome, body.Length);
        Assert.That(await _server.Get<IStorage>().Accounts.FindAsync("slowpoke"), Is.Null);
    }

    [Test]
    public async Task Headers_trickled_one_byte_at_a_time_are_cut_off_at_the_header_timeout()
    {
        // Unlike a client that stops mid-header, this one never goes quiet: only the total time for the headers ends it.
        var outcome = await TrickleAsync("GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
            Encoding.ASCII.GetBytes(new string('a', 1000)), TimeSpan.FromMilliseconds(300));

        Assert.That(outcome.Elapsed, Is.InRange(TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(6)), outcome.Answer);
        Assert.That(outcome.Sent, Is.LessThan(1000));
        Assert.That(outcome.Answer.Length == 0 || outcome.Answer.StartsWith("HTTP/1.1 408", StringComparison.Ordinal), outcome.Answer);
    }
}
