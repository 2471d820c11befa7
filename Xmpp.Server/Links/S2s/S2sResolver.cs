using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;
using Microsoft.Extensions.Logging;

namespace Xmpp.Server.Links.S2s;

/// Where to connect for a domain (RFC 6120 §3.2, XEP-0368): the static peer map; else SRV _xmpps-server._tcp (direct
/// TLS), then _xmpp-server._tcp, each in RFC 2782 priority and weight order; else the domain itself on 5269.
internal sealed class S2sResolver(S2sOptions options, ILogger logger, Random? random = null)
{
    public const int DefaultPort = 5269;
    private readonly Random _random = random ?? Random.Shared;
    private ILookupClient? _dns;
    private bool _dnsUnavailable;

    /// The targets to try in order, and the lines that say how they were found (for the failure log).
    public async Task<(List<S2sTarget> Targets, List<string> Notes)> ResolveAsync(string domain, CancellationToken ct)
    {
        var notes = new List<string>();
        if (options.Peers.TryGetValue(domain, out var peer))
        {
            if (TryParsePeer(peer, out var target)) return ([target! with { Source = "static peer map" }], notes);
            notes.Add($"the static peer entry '{peer}' is not host:port or tls://host:port");
            return ([], notes);
        }
        var targets = new List<S2sTarget>();
        var dns = Dns();
        if (dns is not null)
        {
            bool refused = false;
            foreach (var (service, direct) in new[] { ("_xmpps-server._tcp.", true), ("_xmpp-server._tcp.", false) })
            {
                var name = service + domain;
                try
                {
                    var response = await dns.QueryAsync(name, QueryType.SRV, QueryClass.IN, ct);
                    var records = response.Answers.SrvRecords().ToList();
                    if (response.HasError) notes.Add($"SRV {name}: {response.ErrorMessage}");
                    else if (records.Count == 0) notes.Add($"SRV {name}: no records");
                    // RFC 2782: a single record with target "." says the service is decidedly not available here.
                    if (records.Count == 1 && records[0].Target.Value is "." or "")
                    {
                        notes.Add($"SRV {name}: target '.', the domain offers no such service");
                        refused = true;
                        continue;
                    }
                    foreach (var r in Order(records.Select(r => ((int)r.Priority, (int)r.Weight, r)).ToList(), _random))
                        targets.Add(new S2sTarget(r.Target.Value.TrimEnd('.'), r.Port, direct, $"SRV {name} priority {r.Priority} weight {r.Weight}"));
                }
                catch (DnsResponseException ex)
                {
                    notes.Add($"SRV {name}: DNS lookup failed ({ex.Message})");
                }
            }
            if (targets.Count > 0 || refused) return (targets, notes);
        }
        else notes.Add("no DNS resolver is configured (/etc/resolv.conf or Xmpp:S2s:DnsServers), so SRV records were not looked up");
        // RFC 6120 §3.2.2: no SRV records, so the domain's own A/AAAA addresses on the default port.
        targets.Add(new S2sTarget(domain, DefaultPort, false, "A/AAAA fallback"));
        return (targets, notes);
    }

    public static bool TryParsePeer(string text, out S2sTarget? target)
    {
        target = null;
        bool direct = false;
        var rest = text.Trim();
        if (rest.StartsWith("tls://", StringComparison.OrdinalIgnoreCase)) { direct = true; rest = rest[6..]; }
        int colon = rest.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(rest[(colon + 1)..], out var port) || port is < 1 or > 65535) return false;
        var host = rest[..colon].Trim('[', ']');
        if (host.Length == 0) return false;
        target = new S2sTarget(host, port, direct, "static peer map");
        return true;
    }

    /// RFC 2782: ascending priority; within one priority, repeatedly pick at random with probability proportional to
    /// weight (records of weight 0 first in the running sum, so they are picked only rarely when others weigh more).
    public static List<T> Order<T>(List<(int Priority, int Weight, T Item)> records, Random random)
    {
        var ordered = new List<T>(records.Count);
        foreach (var group in records.GroupBy(r => r.Priority).OrderBy(g => g.Key))
        {
            var left = group.OrderBy(r => r.Weight == 0 ? 0 : 1).ToList();
            while (left.Count > 0)
            {
                int total = left.Sum(r => r.Weight);
                int pick = total == 0 ? 0 : random.Next(0, total + 1);
                int running = 0, chosen = left.Count - 1;
                for (int i = 0; i < left.Count; i++)
                {
                    running += left[i].Weight;
                    if (running >= pick) { chosen = i; break; }
                }
                ordered.Add(left[chosen].Item);
                left.RemoveAt(chosen);
            }
        }
        return ordered;
    }

    /// A target host's addresses: through the configured DNS servers when there are any, else the system resolver.
    /// An empty list comes with the reason, for the failure log.
    public async Task<(IPAddress[] Addresses, string? Problem)> AddressesAsync(string host, CancellationToken ct)
    {
        if (IPAddress.TryParse(host, out var literal)) return ([literal], null);
        if (options.DnsServers.Count == 0)
        {
            try { return (await System.Net.Dns.GetHostAddressesAsync(host, ct), null); }
            catch (SocketException ex) { return ([], $"no address for {host} ({ex.SocketErrorCode})"); }
        }
        var dns = Dns();
        if (dns is null) return ([], $"no address for {host} (no DNS resolver)");
        var found = new List<IPAddress>();
        var errors = new List<string>();
        foreach (var type in new[] { QueryType.AAAA, QueryType.A })
        {
            try
            {
                var response = await dns.QueryAsync(host, type, QueryClass.IN, ct);
                if (response.HasError) errors.Add($"{type} {response.ErrorMessage}");
                found.AddRange(response.Answers.AddressRecords().Select(r => r.Address));
            }
            catch (DnsResponseException ex) { errors.Add($"{type} lookup failed ({ex.Message})"); }
        }
        return found.Count > 0 ? ([.. found], null)
            : ([], $"no address for {host} ({(errors.Count > 0 ? string.Join(", ", errors) : "no A or AAAA records")})");
    }

    /// "ip", "ip:port" or "[ipv6]:port"; the port defaults to 53.
    public static bool TryParseDnsServer(string text, out IPEndPoint? endpoint)
    {
        endpoint = null;
        var t = text.Trim();
        if (IPAddress.TryParse(t, out var bare) && !t.StartsWith('[')) { endpoint = new IPEndPoint(bare, 53); return true; }
        if (!IPEndPoint.TryParse(t, out endpoint)) return false;
        if (endpoint.Port == 0) endpoint.Port = 53;
        return true;
    }

    /// A DNS client for SRV and address look-ups: the configured servers, or the system's.
    public static ILookupClient CreateLookupClient(S2sOptions options, TimeSpan timeout)
    {
        var servers = options.DnsServers.Select(d => TryParseDnsServer(d, out var ep) ? new NameServer(ep!) : null).OfType<NameServer>().ToArray();
        var o = servers.Length > 0 ? new LookupClientOptions(servers) : new LookupClientOptions();
        o.Timeout = timeout;
        o.Retries = 1;
        o.UseCache = true;
        o.ThrowDnsErrors = false;
        return new LookupClient(o);
    }

    private ILookupClient? Dns()
    {
        if (_dns is not null || _dnsUnavailable) return _dns;
        try
        {
            _dns = CreateLookupClient(options, TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or IOException or DnsResponseException)
        {
            _dnsUnavailable = true;
            logger.LogWarning("No DNS resolver for SRV look-ups ({Message}); other servers are found by their A/AAAA records only", ex.Message);
        }
        return _dns;
    }
}
