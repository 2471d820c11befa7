using System.Net;

namespace Xmpp.Server.ProxyProtocol;

/// Xmpp:ProxyProtocol: the PROXY protocol (v1 or v2) from load balancers in front of the client listeners (STARTTLS,
/// direct TLS and HTTPS), so limits, logs and throttles see the client's address instead of the balancer's.
public sealed class ProxyProtocolOptions
{
    /// Addresses or CIDR ranges of the load balancers ("10.0.0.5", "10.0.0.0/24", "::1"). A connection from one of
    /// them must begin with a PROXY header; a connection from anywhere else is an ordinary client whose bytes are never
    /// read as a header. Empty (the default): off.
    public List<string> TrustedProxies { get; set; } = [];

    /// Milliseconds a trusted proxy may take to send the whole header after connecting; HAProxy sends it at once.
    public int HeaderTimeoutMilliseconds { get; set; } = 3000;

    public IEnumerable<string> Validate()
    {
        foreach (var entry in TrustedProxies)
            if (!TryParseNetwork(entry, out _))
                yield return $"Xmpp:ProxyProtocol:TrustedProxies: '{entry}' is neither an IP address nor a CIDR range such as 10.0.0.0/24.";
        if (HeaderTimeoutMilliseconds < 100)
            yield return $"Xmpp:ProxyProtocol:HeaderTimeoutMilliseconds: {HeaderTimeoutMilliseconds} is too small (minimum 100).";
    }

    internal static bool TryParseNetwork(string entry, out IPNetwork network)
    {
        network = default;
        entry = entry.Trim();
        // "10.0.0.1/8" is refused rather than read as 10.0.0.0/8: which of the two was meant is not clear.
        if (entry.Contains('/'))
            return IPNetwork.TryParse(entry, out network) && IPAddress.TryParse(entry[..entry.IndexOf('/')], out var given)
                && network.BaseAddress.Equals(given);
        if (!IPAddress.TryParse(entry, out var address)) return false;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
        return true;
    }
}
