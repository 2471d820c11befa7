using Microsoft.Extensions.Logging;
using Xmpp.Protocol;

namespace Xmpp.Server.Links.S2s;

/// XEP-0220 §2.3: the receiving server asks the originating domain's authoritative server, over a connection of its
/// own found like any other (DNS or the peer map), whether a key it was given is genuine.
internal sealed class DialbackVerifier(S2sServices s)
{
    public async Task<bool> VerifyAsync(string local, string remote, string streamId, string key, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(s.Options.SetupTimeoutSeconds));
        // The authoritative server's certificate need not verify: dialback's assurance comes from reaching it through DNS.
        await using var connection = await new S2sConnector(s).ConnectAsync(local, remote, "dialback verification", timeout.Token);
        await connection.Wire.WriteDialbackAsync("verify", local, remote, streamId, null, key, timeout.Token);
        while (true)
        {
            var answer = await connection.Wire.ReadElementAsync(timeout.Token);
            if (answer.Is("error", Ns.Streams)) throw S2sConnector.StreamError(answer);
            if (!answer.Is("verify", Ns.Dialback) || answer.Attr("id") != streamId) continue;
            await connection.Wire.CloseStreamAsync();
            var type = answer.Attr("type");
            if (type is not ("valid" or "invalid"))
                s.Logger.LogWarning("s2s: {Remote} answered a dialback verification with type '{Type}'", remote, type);
            return type == "valid";
        }
    }
}
