using System.Net;
using System.Security.Cryptography;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Interop;

// XEP-0363 with real clients: slixmpp's xep_0363 plugin (aiohttp) and go-sendxmpp's --http-upload find
// upload.localhost through disco, get a slot, PUT the file over HTTPS, and the GET URL serves the same bytes.
// Both verify the server's self-signed certificate against the file itself (SSL_CERT_FILE), not by skipping checks.
[TestFixture]
[Category("Interop")]
public sealed class UploadInteropTests : InteropFixture
{
    private string _dir = null!;

    protected override void RequireClients()
    {
        ClientProcess.RequirePythonModule("slixmpp", "python3-slixmpp");
        ClientProcess.RequirePythonModule("aiohttp", "python3-aiohttp");
    }

    protected override void ConfigureServer(Dictionary<string, string?> options) => TestServer.WithHttp(options);

    [SetUp]
    public void MakeDirectory() => _dir = Directory.CreateTempSubdirectory("xmpp-upload-interop-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    private string CaFile => Path.Combine(_server.Options.CertDir, _server.Domain, "fullchain.pem");

    private string MakeFile(string name, int size)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, RandomNumberGenerator.GetBytes(size));
        return path;
    }

    private async Task AssertServed(string url, string path)
    {
        Assert.That(url, Does.StartWith($"https://localhost:{_server.HttpPort}/upload/"));
        using var http = UploadClient.Http(_server);
        var (status, sha, length) = await UploadClient.DownloadAsync(http, url);
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(length, Is.EqualTo(new FileInfo(path).Length));
        Assert.That(Convert.ToHexString(sha), Is.EqualTo(Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)))));
    }

    [Test]
    public async Task Slixmpp_uploads_a_file_with_its_xep_0363_plugin_and_the_get_url_serves_it()
    {
        var path = MakeFile("balcony scene.jpg", 300_000);

        using var run = await ClientProcess.RunScriptAsync(Slix, "upload", Romeo, "r0meo-pass", _server,
            extra: ["--file", path, "--content-type", "image/jpeg", "--ca-file", CaFile], scriptTimeout: TimeSpan.FromSeconds(30));

        Assert.That(run.ExitCode, Is.EqualTo(0), run.Describe());
        var service = run.EventsNamed("upload_service").Single();
        Assert.That(ClientProcess.Text(service, "jid"), Is.EqualTo("upload.localhost"));
        Assert.That(service.GetProperty("max_file_size").GetInt64(), Is.EqualTo(100L * 1024 * 1024));
        var url = ClientProcess.Text(run.EventsNamed("uploaded").Single(), "url")!;
        Assert.That(url, Does.EndWith("/balcony%20scene.jpg"));
        await AssertServed(url, path);
    }

    [Test]
    public async Task Go_sendxmpp_uploads_a_file_and_sends_its_url_to_juliet()
    {
        var sendxmpp = ClientProcess.RequireProgram("go-sendxmpp", "go-sendxmpp");
        var path = MakeFile("letter.pdf", 100_000);
        using var juliet = ClientProcess.StartScript(Slix, "receive", Juliet, "jul1et-pass", _server, extra: ["--count", "1"],
            scriptTimeout: TimeSpan.FromSeconds(30));
        await juliet.WaitForEventAsync("online");

        // -h uploads the file over XEP-0363 and sends the GET URL; Go reads trusted roots from SSL_CERT_FILE.
        using var romeo = await ClientProcess.RunAsync("/usr/bin/env",
            ["SSL_CERT_FILE=" + CaFile, sendxmpp, "-u", Romeo, "-p", "r0meo-pass", "-j", $"{_server.Host}:{_server.C2sPort}",
             "-n", "--timeout", "10", "-h", path, Juliet],
            TimeSpan.FromSeconds(30));
        await juliet.WaitForExitAsync();

        Assert.That(romeo.ExitCode, Is.EqualTo(0), romeo.Describe());
        Assert.That(juliet.ExitCode, Is.EqualTo(0), juliet.Describe());
        var url = ClientProcess.Text(juliet.EventsNamed("message").Single(), "body")!;
        Assert.That(url, Does.EndWith("/letter.pdf"));
        await AssertServed(url, path);
    }
}
