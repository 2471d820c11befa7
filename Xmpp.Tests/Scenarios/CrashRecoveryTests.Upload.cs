using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Scenarios;

// Issue 20, "kill -9 during every kind of write": HTTP uploads (XEP-0363).
public sealed partial class CrashRecoveryTests
{
    private sealed record Upload(string Put, string Get, byte[] Body);

    private static async Task<Upload> UploadSlotAsync(TestClient client, int i)
    {
        var body = new byte[100_000 + i * 997 % 150_000];
        new Random(i).NextBytes(body);
        var reply = await client.IqAsync($"<iq type='get' to='upload.localhost'><request xmlns='{Ns.HttpUpload}' filename='f{i}.bin' " +
            $"size='{body.Length}' content-type='application/octet-stream'/></iq>", TimeSpan.FromSeconds(10));
        var slot = reply.Child("slot", Ns.HttpUpload);
        Assert.That(slot, Is.Not.Null, reply.ToString());
        return new Upload(slot!.Child("put", Ns.HttpUpload)!.Attr("url")!, slot.Child("get", Ns.HttpUpload)!.Attr("url")!, body);
    }

    private static Task<HttpResponseMessage> PutAsync(HttpClient http, Upload upload) =>
        UploadClient.PutAsync(http, upload.Put, upload.Body, "application/octet-stream");

    [Test]
    public async Task Kill_9_during_uploads_loses_no_acknowledged_file_and_serves_no_partial_one()
    {
        var endpoint = new ServerEndpoint("127.0.0.1", _c2s, _tls);
        int httpPort = TestServer.FreePort();
        // Slots as fast as the uploads go, on purpose: the slot and IQ rates are not under test here.
        string[] args = [.. Args(httpPort), "--Xmpp:RateLimits:UploadSlotsPerMinute=0", "--Xmpp:RateLimits:IqPerSecond=0"];
        var acked = new List<Upload>();
        Upload? inFlight = null;
        Upload half;
        using var http = UploadClient.Http();
        await using (var server = await ServerProcess.StartAsync(_dir, _c2s, _environment, args))
        {
            var alice = await TestClient.ConnectAsync(endpoint, "alice", "alice-pw", "pc");
            // One PUT sends its headers and half its body, then waits: it is mid-body when the process dies.
            half = await UploadSlotAsync(alice, 0);
            using var halfTcp = new TcpClient();
            await halfTcp.ConnectAsync(IPAddress.Loopback, httpPort);
            await using var halfTls = new SslStream(halfTcp.GetStream());
            await halfTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost", RemoteCertificateValidationCallback = (_, _, _, _) => true,
                ApplicationProtocols = [SslApplicationProtocol.Http11],
            });
            await halfTls.WriteAsync(Encoding.ASCII.GetBytes($"PUT {new Uri(half.Put).PathAndQuery} HTTP/1.1\r\nHost: localhost\r\n" +
                $"Content-Type: application/octet-stream\r\nContent-Length: {half.Body.Length}\r\n\r\n"));
            await halfTls.WriteAsync(half.Body.AsMemory(0, half.Body.Length / 2));
            await halfTls.FlushAsync();

            var killer = Task.Run(async () =>
            {
                await Task.Delay(2500);
                server.KillHard();
            });
            try
            {
                // The handler fsyncs the file, renames it, commits the record and only then answers 201
                // (UploadHttpHandler), so every 201 counted here must survive.
                for (var i = 1; i <= 2000; i++)
                {
                    var upload = await UploadSlotAsync(alice, i);
                    inFlight = upload;
                    using var response = await PutAsync(http, upload);
                    Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created), await response.Content.ReadAsStringAsync());
                    acked.Add(upload);
                    inFlight = null;
                }
            }
            catch (Exception e) when (e is IOException or TimeoutException or ObjectDisposedException or SocketException
                or HttpRequestException or TaskCanceledException)
            {
                // The stream or the PUT ended under us: the kill.
            }
            await killer;
            await alice.DisposeAsync();
        }
        Assert.That(acked.Count, Is.GreaterThanOrEqualTo(3), "uploads were flowing when the process was killed");
        TestContext.Out.WriteLine($"{storage}: {acked.Count} uploads acknowledged before the kill ({acked.Sum(u => (long)u.Body.Length)} bytes), one more in flight: {inFlight is not null}");

        await using var restarted = await ServerProcess.StartAsync(_dir, _c2s, _environment, args);
        foreach (var upload in acked)
        {
            var (status, sha, length) = await UploadClient.DownloadAsync(http, upload.Get);
            Assert.That(status, Is.EqualTo(HttpStatusCode.OK), upload.Get);
            Assert.That(length, Is.EqualTo(upload.Body.Length), upload.Get);
            Assert.That(sha, Is.EqualTo(SHA256.HashData(upload.Body)), upload.Get);
        }
        // Nothing applied twice: a used slot stays used.
        using (var replay = await PutAsync(http, acked[0]))
            Assert.That(replay.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));

        // The half-sent body is not served, not even in part, and its slot takes the whole upload again.
        Assert.That((await UploadClient.DownloadAsync(http, half.Get)).Status, Is.EqualTo(HttpStatusCode.NotFound));
        // The one in flight at the kill is either not there or all there.
        if (inFlight is not null)
        {
            var (status, sha, _) = await UploadClient.DownloadAsync(http, inFlight.Get);
            Assert.That(status, Is.AnyOf(HttpStatusCode.NotFound, HttpStatusCode.OK));
            if (status == HttpStatusCode.OK) Assert.That(sha, Is.EqualTo(SHA256.HashData(inFlight.Body)));
        }
        // Every file under a final name is complete, whatever the store says about it.
        var uploads = Path.Combine(_dir, "data", "uploads");
        var sizes = acked.Concat(inFlight is null ? [] : [inFlight]).ToDictionary(u => UploadId(u.Get), u => (long)u.Body.Length);
        foreach (var file in Directory.EnumerateFiles(uploads))
        {
            Assert.That(sizes.ContainsKey(Path.GetFileName(file)), file);
            Assert.That(new FileInfo(file).Length, Is.EqualTo(sizes[Path.GetFileName(file)]), file);
        }

        using (var retry = await PutAsync(http, half))
            Assert.That(retry.StatusCode, Is.EqualTo(HttpStatusCode.Created), await retry.Content.ReadAsStringAsync());
        var again = await UploadClient.DownloadAsync(http, half.Get);
        Assert.That(again.Sha256, Is.EqualTo(SHA256.HashData(half.Body)));
    }

    // /upload/ID/NAME: the id is the file's name under the uploads folder (UploadFiles).
    private static string UploadId(string url) => new Uri(url).AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries)[1];
}
