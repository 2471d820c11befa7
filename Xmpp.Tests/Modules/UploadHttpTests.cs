using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Xmpp.Server.Modules.Upload;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0363 §6 over real HTTPS: Romeo puts files into his slots and anyone with the GET URL fetches them; every
/// misuse of a slot is refused with its HTTP status.
[TestFixture]
public sealed class UploadHttpTests
{
    private TestServer _server = null!;
    private TestClient _romeo = null!;
    private HttpClient _http = null!;

    [SetUp]
    public async Task Start()
    {
        _server = await UploadModuleTests.Server();
        _romeo = await UploadModuleTests.Connect(_server);
        _http = UploadClient.Http(_server);
    }

    [TearDown]
    public async Task Stop()
    {
        _http.Dispose();
        await _romeo.DisposeAsync();
        await _server.DisposeAsync();
    }

    private Task<(string Put, string Get)> Slot(string name, long size, string? type) => UploadClient.SlotAsync(_romeo, _server, name, size, type);

    private async Task<(string Put, string Get)> Uploaded(string name, byte[] content, string type)
    {
        var slot = await Slot(name, content.Length, type);
        using var put = await UploadClient.PutAsync(_http, slot.Put, content, type);
        Assert.That(put.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        return slot;
    }

    [TestCase(0, "application/octet-stream")]
    [TestCase(1, "text/plain")]
    [TestCase(16 * 1024 * 1024, "image/jpeg")]
    public async Task A_file_goes_up_and_comes_back_with_the_same_hash(long size, string type)
    {
        var (put, get) = await Slot("file.bin", size, type);
        using var source = new PatternStream(size);
        using (var response = await UploadClient.PutAsync(_http, put, source, size, type))
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created));

        var (status, sha, length) = await UploadClient.DownloadAsync(_http, get);

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(length, Is.EqualTo(size));
        Assert.That(Convert.ToHexString(sha), Is.EqualTo(Convert.ToHexString(source.Sha256())));
    }

    [Test]
    public async Task A_download_carries_type_length_disposition_caching_and_cors_headers()
    {
        var name = "Roméo \"&\" Juliet; 100%.pdf";
        var (_, get) = await Uploaded(name, "%PDF-1.7"u8.ToArray(), "application/pdf");

        using var response = await _http.GetAsync(get);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/pdf"));
        Assert.That(response.Content.Headers.ContentLength, Is.EqualTo(8));
        var disposition = response.Content.Headers.ContentDisposition!;
        Assert.That(disposition.DispositionType, Is.EqualTo("attachment"));
        Assert.That(disposition.FileNameStar, Is.EqualTo(name));
        Assert.That(disposition.FileName, Is.EqualTo("Rom_o _&_ Juliet; 100_.pdf").Or.EqualTo("\"Rom_o _&_ Juliet; 100_.pdf\""));
        Assert.That(response.Headers.ETag?.IsWeak, Is.False);
        Assert.That(response.Headers.CacheControl?.ToString(), Does.Contain("immutable"));
        Assert.That(response.Headers.GetValues("Access-Control-Allow-Origin").Single(), Is.EqualTo("*"));
        Assert.That(response.Headers.GetValues("X-Content-Type-Options").Single(), Is.EqualTo("nosniff"));
        Assert.That(response.Headers.AcceptRanges.Single(), Is.EqualTo("bytes"));

        using var again = new HttpRequestMessage(HttpMethod.Get, get);
        again.Headers.IfNoneMatch.Add(response.Headers.ETag!);
        using var cached = await _http.SendAsync(again);
        Assert.That(cached.StatusCode, Is.EqualTo(HttpStatusCode.NotModified));
    }

    [Test]
    public async Task An_image_is_shown_inline()
    {
        var (_, get) = await Uploaded("a.png", [1, 2, 3], "image/png");

        using var response = await _http.GetAsync(get);

        Assert.That(response.Content.Headers.ContentDisposition?.DispositionType, Is.EqualTo("inline"));
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("image/png"));
    }

    [Test]
    public async Task A_cors_preflight_allows_put_with_a_content_type_from_any_origin()
    {
        var (put, _) = await Slot("a.txt", 3, "text/plain");
        using var preflight = new HttpRequestMessage(HttpMethod.Options, put);
        preflight.Headers.Add("Origin", "https://converse.example");
        preflight.Headers.Add("Access-Control-Request-Method", "PUT");
        preflight.Headers.Add("Access-Control-Request-Headers", "content-type");

        using var response = await _http.SendAsync(preflight);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(response.Headers.GetValues("Access-Control-Allow-Origin").Single(), Is.EqualTo("*"));
        Assert.That(response.Headers.GetValues("Access-Control-Allow-Methods").Single(), Does.Contain("PUT"));
        Assert.That(response.Headers.GetValues("Access-Control-Allow-Headers").Single(), Does.Contain("Content-Type"));
    }

    [TestCase("bytes=10-19", 206, 10, 10, "bytes 10-19/100")]
    [TestCase("bytes=90-", 206, 90, 10, "bytes 90-99/100")]
    [TestCase("bytes=-5", 206, 95, 5, "bytes 95-99/100")]
    [TestCase("bytes=95-500", 206, 95, 5, "bytes 95-99/100")]
    [TestCase("bytes=0-0", 206, 0, 1, "bytes 0-0/100")]
    [TestCase("bytes=0-1,5-6", 200, 0, 100, null)]
    [TestCase("items=0-5", 200, 0, 100, null)]
    public async Task A_range_request_gets_that_part_of_the_file(string range, int status, int offset, int length, string? contentRange)
    {
        var content = Enumerable.Range(0, 100).Select(i => (byte)i).ToArray();
        var (_, get) = await Uploaded("r.bin", content, "application/octet-stream");
        using var request = new HttpRequestMessage(HttpMethod.Get, get);
        request.Headers.TryAddWithoutValidation("Range", range);

        using var response = await _http.SendAsync(request);

        Assert.That((int)response.StatusCode, Is.EqualTo(status));
        Assert.That(await response.Content.ReadAsByteArrayAsync(), Is.EqualTo(content.Skip(offset).Take(length).ToArray()));
        Assert.That(response.Content.Headers.ContentRange?.ToString(), Is.EqualTo(contentRange));
    }

    [Test]
    public async Task A_range_past_the_end_gets_416_with_the_size()
    {
        var (_, get) = await Uploaded("r.bin", new byte[100], "application/octet-stream");
        using var request = new HttpRequestMessage(HttpMethod.Get, get);
        request.Headers.Range = new RangeHeaderValue(100, 200);

        using var response = await _http.SendAsync(request);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.RequestedRangeNotSatisfiable));
        Assert.That(response.Content.Headers.ContentRange?.ToString(), Is.EqualTo("bytes */100"));
    }

    [Test]
    public async Task A_range_with_a_stale_if_range_gets_the_whole_file()
    {
        var (_, get) = await Uploaded("r.bin", new byte[100], "application/octet-stream");
        using var request = new HttpRequestMessage(HttpMethod.Get, get);
        request.Headers.Range = new RangeHeaderValue(10, 19);
        request.Headers.TryAddWithoutValidation("If-Range", "\"some-other-version\"");

        using var response = await _http.SendAsync(request);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(response.Content.Headers.ContentLength, Is.EqualTo(100));
    }

    [Test]
    public async Task A_head_request_gets_the_headers_without_a_body()
    {
        var (_, get) = await Uploaded("h.txt", "hello"u8.ToArray(), "text/plain");

        using var response = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, get));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(response.Content.Headers.ContentLength, Is.EqualTo(5));
    }

    [Test]
    public async Task A_second_put_to_a_used_slot_is_refused_and_the_file_unchanged()
    {
        var (put, get) = await Uploaded("a.txt", "first"u8.ToArray(), "text/plain");

        using var replay = await UploadClient.PutAsync(_http, put, "other"u8.ToArray(), "text/plain");

        Assert.That(replay.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(await _http.GetStringAsync(get), Is.EqualTo("first"));
    }

    [TestCase(4, HttpStatusCode.BadRequest)]
    [TestCase(6, HttpStatusCode.RequestEntityTooLarge)]
    public async Task A_body_of_another_size_than_announced_is_refused(int length, HttpStatusCode status)
    {
        var (put, get) = await Slot("a.txt", 5, "text/plain");

        using var response = await UploadClient.PutAsync(_http, put, new byte[length], "text/plain");

        Assert.That(response.StatusCode, Is.EqualTo(status));
        Assert.That((await _http.GetAsync(get)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        using var right = await UploadClient.PutAsync(_http, put, new byte[5], "text/plain");
        Assert.That(right.StatusCode, Is.EqualTo(HttpStatusCode.Created), "a refused attempt does not use up the slot");
    }

    [TestCase("image/png")]
    [TestCase(null)]
    public async Task A_body_of_another_content_type_than_announced_is_refused(string? type)
    {
        var (put, get) = await Slot("a.jpg", 3, "image/jpeg");

        using var response = await UploadClient.PutAsync(_http, put, new byte[3], type);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.UnsupportedMediaType));
        Assert.That((await _http.GetAsync(get)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task The_content_type_matches_whatever_its_case_and_parameters()
    {
        var (put, _) = await Slot("a.txt", 3, "text/plain");

        using var response = await UploadClient.PutAsync(_http, put, new byte[3], "Text/Plain; charset=utf-8");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created));
    }

    [Test]
    public async Task A_tampered_put_url_is_refused()
    {
        var (put, get) = await Slot("a.txt", 5, "text/plain");
        var query = put[(put.IndexOf("?v=", StringComparison.Ordinal) + 3)..];
        var dot = query.IndexOf('.');
        // The same signature over a slot claiming 6 bytes; and the right slot with one signature character changed.
        var bigger = Convert.ToBase64String(Encoding.UTF8.GetBytes(
            Encoding.UTF8.GetString(Microsoft.AspNetCore.WebUtilities.WebEncoders.Base64UrlDecode(query[..dot])).Replace("\n5\n", "\n6\n")))
            .TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var sig = query[(dot + 1)..];
        var flipped = (sig[0] == 'A' ? "B" : "A") + sig[1..];
        var baseUrl = put[..put.IndexOf('?')];

        using var r1 = await UploadClient.PutAsync(_http, $"{baseUrl}?v={bigger}.{sig}", new byte[6], "text/plain");
        using var r2 = await UploadClient.PutAsync(_http, $"{baseUrl}?v={query[..dot]}.{flipped}", new byte[5], "text/plain");
        using var r3 = await UploadClient.PutAsync(_http, baseUrl, new byte[5], "text/plain");
        var otherId = get.Split('/')[4][..21] + (get.Split('/')[4][21] == 'A' ? 'B' : 'A');
        using var r4 = await UploadClient.PutAsync(_http, put.Replace(get.Split('/')[4], otherId), new byte[5], "text/plain");

        Assert.That(new[] { r1.StatusCode, r2.StatusCode, r3.StatusCode, r4.StatusCode }, Is.All.EqualTo(HttpStatusCode.Forbidden));
        Assert.That((await _http.GetAsync(get)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task An_expired_slot_is_refused()
    {
        var slots = _server.Get<UploadSlots>();
        var expired = new UploadSlot(UploadSlots.NewId(), "romeo@localhost", "a.txt", 3, "text/plain", DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeSeconds());
        var baseUrl = slots.BaseUrl("localhost");

        using var response = await UploadClient.PutAsync(_http, slots.PutUrl(baseUrl, expired), new byte[3], "text/plain");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("expired"));
        var valid = expired with { Expires = DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeSeconds() };
        using var ok = await UploadClient.PutAsync(_http, slots.PutUrl(baseUrl, valid), new byte[3], "text/plain");
        Assert.That(ok.StatusCode, Is.EqualTo(HttpStatusCode.Created), "the same slot signed with a later expiry works");
    }

    [Test]
    public async Task A_file_is_not_served_while_its_upload_runs()
    {
        const int size = 1024 * 1024;
        var (put, get) = await Slot("slow.bin", size, "application/octet-stream");
        using var source = new PatternStream(size) { PauseAt = size / 2 };

        var upload = UploadClient.PutAsync(_http, put, source, size, "application/octet-stream");
        await source.Reached.Task.WaitAsync(TimeSpan.FromSeconds(30));
        using (var during = await _http.GetAsync(get))
            Assert.That(during.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        using (var concurrent = await UploadClient.PutAsync(_http, put, new byte[size], "application/octet-stream"))
            Assert.That(concurrent.StatusCode, Is.EqualTo(HttpStatusCode.Conflict), "a second PUT while the first runs");
        source.Release.SetResult();

        using (var done = await upload) Assert.That(done.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        var (status, sha, _) = await UploadClient.DownloadAsync(_http, get);
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(sha, Is.EqualTo(source.Sha256()));
    }

    [Test]
    public async Task An_upload_cut_off_mid_body_leaves_nothing_served_and_no_temporary_file()
    {
        const int size = 4 * 1024 * 1024;
        var (put, get) = await Slot("cut.bin", size, "application/octet-stream");
        var uri = new Uri(put);
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, _server.HttpPort);
            await using var tls = new SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                ApplicationProtocols = [SslApplicationProtocol.Http11],
            });
            await tls.WriteAsync(Encoding.ASCII.GetBytes(
                $"PUT {uri.PathAndQuery} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"));
            await tls.WriteAsync(new byte[size / 4]);
            await tls.FlushAsync();
            var files = _server.Get<UploadFiles>();
            Assert.That(await Wait.UntilAsync(() => Directory.Exists(files.TempRoot) && Directory.EnumerateFiles(files.TempRoot).Any()),
                "the upload started");
            tcp.Client.Close(); // abort: the body never completes
        }
        var uploadFiles = _server.Get<UploadFiles>();

        Assert.That(await Wait.UntilAsync(() => !Directory.EnumerateFiles(uploadFiles.TempRoot).Any()), "the temporary file is removed");
        Assert.That((await _http.GetAsync(get)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(Directory.EnumerateFiles(uploadFiles.Root), Is.Empty);
        using var retry = await UploadClient.PutAsync(_http, put, new PatternStream(size), size, "application/octet-stream");
        Assert.That(retry.StatusCode, Is.EqualTo(HttpStatusCode.Created), "the slot can be used again after a broken attempt");
    }

    [Test]
    public async Task A_put_after_a_crash_between_the_rename_and_the_record_replaces_the_unrecorded_file()
    {
        // What a kill -9 after UploadFiles.Commit's rename and before the record's commit leaves: the file under its
        // final name, no record, so it is not served and the client never got 201. Its retry of the same PUT must
        // store the file (issue 20), not fail on the leftover.
        var content = Encoding.ASCII.GetBytes("the whole file");
        var (put, get) = await Slot("crash.txt", content.Length, "text/plain");
        var files = _server.Get<UploadFiles>();
        Directory.CreateDirectory(files.Root);
        await File.WriteAllBytesAsync(files.PathOf(UploadHttpHandler.SlotId(new Uri(get).AbsolutePath.AsSpan(UploadSlots.PathPrefix.Length))!), content[..5]);
        Assert.That((await _http.GetAsync(get)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound), "an unrecorded file is not served");

        using var retry = await UploadClient.PutAsync(_http, put, content, "text/plain");

        Assert.That(retry.StatusCode, Is.EqualTo(HttpStatusCode.Created), await retry.Content.ReadAsStringAsync());
        var (status, sha, length) = await UploadClient.DownloadAsync(_http, get);
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(length, Is.EqualTo(content.Length));
        Assert.That(sha, Is.EqualTo(SHA256.HashData(content)));
    }

    [Test]
    public async Task A_put_without_content_length_gets_411()
    {
        var (put, _) = await Slot("a.txt", 3, "text/plain");
        var content = new StreamContent(new PatternStream(3));
        content.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
        using var request = new HttpRequestMessage(HttpMethod.Put, put) { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await _http.SendAsync(request);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.LengthRequired));
    }

    [TestCase("/upload/not-an-id/x", "GET", HttpStatusCode.NotFound)]
    [TestCase("/upload/AAAAAAAAAAAAAAAAAAAAAA/x", "GET", HttpStatusCode.NotFound)]
    [TestCase("/upload/AAAAAAAAAAAAAAAAAAAAAA/x", "DELETE", HttpStatusCode.MethodNotAllowed)]
    [TestCase("/elsewhere", "GET", HttpStatusCode.NotFound)]
    [TestCase("/", "GET", HttpStatusCode.NotFound)]
    public async Task Unknown_paths_ids_and_methods_get_their_status(string path, string method, HttpStatusCode status)
    {
        using var response = await _http.SendAsync(new HttpRequestMessage(new HttpMethod(method), $"https://localhost:{_server.HttpPort}{path}"));

        Assert.That(response.StatusCode, Is.EqualTo(status));
    }

    [Test]
    public async Task The_https_endpoint_presents_the_domain_certificate_chosen_by_sni()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, _server.HttpPort);
        await using var tls = new SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
        });

        var certificate = (System.Security.Cryptography.X509Certificates.X509Certificate2)tls.RemoteCertificate!;
        Assert.That(certificate.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.DnsName, false), Is.EqualTo("localhost"));
        Assert.That(tls.NegotiatedApplicationProtocol, Is.EqualTo(SslApplicationProtocol.Http2));
    }

    [Test]
    public async Task Cleanup_removes_files_past_retention_and_abandoned_temporary_files()
    {
        var (_, oldGet) = await Uploaded("old.txt", "old"u8.ToArray(), "text/plain");
        var files = _server.Get<UploadFiles>();
        Directory.CreateDirectory(files.TempRoot);
        var abandoned = Path.Combine(files.TempRoot, "x.part");
        await File.WriteAllBytesAsync(abandoned, new byte[10]);
        var cleanup = _server.Get<UploadCleanupService>();

        Assert.That(await cleanup.RunOnceAsync(DateTimeOffset.UtcNow), Is.Zero, "nothing is old yet");
        Assert.That((await _http.GetAsync(oldGet)).StatusCode, Is.EqualTo(HttpStatusCode.OK));

        var removed = await cleanup.RunOnceAsync(DateTimeOffset.UtcNow.AddDays(_server.Options.Upload.RetentionDays).AddMinutes(1));

        Assert.That(removed, Is.EqualTo(2));
        Assert.That((await _http.GetAsync(oldGet)).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(File.Exists(abandoned), Is.False);
        Assert.That(Directory.EnumerateFiles(files.Root), Is.Empty);
    }

    [Test]
    public async Task Cleanup_removes_a_file_that_has_no_record()
    {
        var files = _server.Get<UploadFiles>();
        Directory.CreateDirectory(files.Root);
        var orphan = files.PathOf(UploadSlots.NewId());
        await File.WriteAllBytesAsync(orphan, new byte[10]);

        await _server.Get<UploadCleanupService>().RunOnceAsync(DateTimeOffset.UtcNow.AddDays(1));

        Assert.That(File.Exists(orphan), Is.False);
    }
}
