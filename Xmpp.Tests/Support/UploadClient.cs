using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Support;

/// The client side of XEP-0363 for tests: slot requests over XMPP and an HttpClient that accepts the test server's
/// self-signed certificate and always connects to loopback, whatever host the URL names.
public static class UploadClient
{
    public static HttpClient Http(TestServer server) => Http();

    /// The same for a server started as a process (Support/ServerProcess.cs).
    public static HttpClient Http() => new(new SocketsHttpHandler
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        ConnectCallback = async (context, ct) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(IPAddress.Loopback, context.DnsEndPoint.Port, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    { Timeout = TimeSpan.FromMinutes(2) };

    public static string Service(TestServer server) => "upload." + server.Domain;

    public static Task<Element> RequestAsync(TestClient client, TestServer server, string filename, long size, string? contentType)
    {
        var request = new Element("request", Ns.HttpUpload).SetAttr("filename", filename).SetAttr("size", size.ToString())
            .SetAttr("content-type", contentType);
        return client.IqAsync(new Element("iq", Ns.Client).SetAttr("type", "get").SetAttr("to", Service(server)).Add(request));
    }

    /// Requests a slot and returns its PUT and GET URLs; fails the test when the server refuses.
    public static async Task<(string Put, string Get)> SlotAsync(TestClient client, TestServer server, string filename, long size, string? contentType)
    {
        var reply = await RequestAsync(client, server, filename, size, contentType);
        var slot = reply.Child("slot", Ns.HttpUpload);
        Assert.That(slot, Is.Not.Null, reply.ToString());
        return (slot!.Child("put", Ns.HttpUpload)!.Attr("url")!, slot.Child("get", Ns.HttpUpload)!.Attr("url")!);
    }

    public static async Task<HttpResponseMessage> PutAsync(HttpClient http, string url, Stream body, long length, string? contentType)
    {
        var content = new StreamContent(body, 64 * 1024);
        content.Headers.ContentLength = length;
        if (contentType is not null) content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return await http.PutAsync(url, content);
    }

    public static Task<HttpResponseMessage> PutAsync(HttpClient http, string url, byte[] body, string? contentType) =>
        PutAsync(http, url, new MemoryStream(body), body.Length, contentType);

    /// Downloads a URL streaming, returning the status, the SHA-256 of the body and its length.
    public static async Task<(HttpStatusCode Status, byte[] Sha256, long Length)> DownloadAsync(HttpClient http, string url)
    {
        using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead);
        await using var body = await response.Content.ReadAsStreamAsync();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long total = 0;
        int n;
        while ((n = await body.ReadAsync(buffer)) > 0)
        {
            sha.AppendData(buffer, 0, n);
            total += n;
        }
        return (response.StatusCode, sha.GetCurrentHash(), total);
    }
}
