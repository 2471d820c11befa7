using System.Security.Cryptography;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Support;

/// A raw XEP-0114 component over TCP, as a bridge or push app server would connect: it opens a
/// jabber:component:accept stream, answers with the SHA-1 handshake and then sends stanzas without an xmlns (so they
/// are in the stream's default namespace, as real components send them).
public sealed class TestComponent : IAsyncDisposable
{
    private TestComponent(TestClient connection, string domain)
    {
        Connection = connection;
        Domain = domain;
    }

    public TestClient Connection { get; }
    public string Domain { get; }

    /// Connects and completes the handshake; throws with the stream error when the server refuses.
    public static async Task<TestComponent> ConnectAsync(int port, string domain, string secret)
    {
        var (component, answer) = await TryConnectAsync(port, domain, secret);
        if (!answer.Is("handshake", Ns.ComponentAccept))
        {
            await component.DisposeAsync();
            throw new InvalidOperationException($"the handshake was refused: {answer}");
        }
        component.Connection.StartReading();
        return component;
    }

    /// Connects and sends the handshake; returns the server's answer (&lt;handshake/&gt; or a stream error).
    public static async Task<(TestComponent Component, Element Answer)> TryConnectAsync(int port, string domain, string secret)
    {
        var connection = await TestClient.ConnectRawAsync(new ServerEndpoint("127.0.0.1", port, 0, domain));
        var component = new TestComponent(connection, domain);
        await connection.SendRawAsync(
            $"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>");
        var (kind, header) = await connection.ReadItemAsync();
        if (kind != XmlItemKind.StreamHeader) throw new InvalidOperationException($"expected a stream header, got {kind}");
        var id = header!.Attr("id") ?? "";
        var digest = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(id + secret)));
        await connection.SendRawAsync($"<handshake>{digest}</handshake>");
        return (component, await connection.ReadElementAsync());
    }

    public Task SendAsync(string xml) => Connection.SendRawAsync(xml);

    public Task<Element> ReceiveAsync(Func<Element, bool> match, TimeSpan? timeout = null) => Connection.ReceiveAsync(match, timeout);

    public ValueTask DisposeAsync() => Connection.DisposeAsync();
}
