using System.Net;
using System.Net.NetworkInformation;
using DnsClient;
using DnsClient.Protocol;
using Xmpp.Server.Hosting;
using Xmpp.Server.Links.S2s;

namespace Xmpp.Server.Cli;

/// `xmppd check`, DNS part (as `prosodyctl check dns`): for each served domain the SRV records clients and servers look
/// up (RFC 6120 §3.2, XEP-0368) point at this host and at the ports it opens; for each service subdomain (conference.,
/// upload., proxy.) other servers find this host through _xmpp-server SRV or the name's own addresses.
/// One line per problem; lines starting "warning:" do not fail the check. Nothing is checked when DNS does not answer.
public sealed class DnsCheck
{
    private readonly XmppServerOptions _options;
    private readonly ILookupClient _dns;
    private readonly HashSet<IPAddress> _here;
    private readonly List<string> _problems = [];
    private readonly List<string> _warnings = [];
    private bool _dnsSilent;
    private bool _problemsAreWarnings;

    public DnsCheck(XmppServerOptions options, IEnumerable<IPAddress>? localAddresses = null)
    {
        _options = options;
        _dns = S2sResolver.CreateLookupClient(options.S2s, TimeSpan.FromSeconds(3));
        _here = [.. (localAddresses ?? LocalAddresses()).Select(Normal)];
        foreach (var a in options.S2s.PublicAddresses.Concat(options.ListenAddresses))
            if (IPAddress.TryParse(a, out var ip)) _here.Add(Normal(ip));
    }

    public IReadOnlyList<string> Problems => _problems;
    public IReadOnlyList<string> Warnings => _warnings;

    /// The subdomains of a served domain that other servers address: the hosted services, as the modules register them.
    public static IEnumerable<string> ServiceDomains(XmppServerOptions o, string domain)
    {
        if (o.Muc.Enabled) yield return o.Muc.Subdomain + "." + domain;
        if (o.Upload.Enabled && o.HttpPort != 0) yield return o.Upload.Subdomain + "." + domain;
        if (o.Proxy65.Port > 0) yield return o.Proxy65.Subdomain + "." + domain;
    }

    /// RFC 6761 names never appear in public DNS: with the system's resolvers they are not looked up.
    private static bool SpecialUse(string domain) =>
        domain == "localhost" || IPAddress.TryParse(domain, out _)
        || new[] { ".localhost", ".test", ".invalid", ".example", ".local" }.Any(t => domain.EndsWith(t, StringComparison.Ordinal));

    /// Returns a line describing what was checked (or why nothing was).
    public async Task<string> RunAsync(CancellationToken ct = default)
    {
        var o = _options;
        var checkedNames = new List<string>();
        foreach (var domain in new ServedDomains(o.Domains).All)
        {
            if (o.S2s.DnsServers.Count == 0 && SpecialUse(domain)) continue;
            bool s2s = o.S2s.Enabled && o.S2s.Port > 0;
            await CheckServiceAsync(domain, "_xmpp-client._tcp.", o.C2sPort, "Xmpp:C2sPort", 5222, required: o.C2sPort > 0, ct);
            await CheckServiceAsync(domain, "_xmpps-client._tcp.", o.C2sTlsPort, "Xmpp:C2sTlsPort", 0, required: false, ct);
            await CheckServiceAsync(domain, "_xmpp-server._tcp.", s2s ? o.S2s.Port : 0, "Xmpp:S2s:Port", S2sResolver.DefaultPort, required: s2s, ct);
            await CheckServiceAsync(domain, "_xmpps-server._tcp.", o.S2s.Enabled ? o.S2s.DirectTlsPort : 0, "Xmpp:S2s:DirectTlsPort", 0, required: false, ct);
            checkedNames.Add(domain);
            if (!o.S2s.Enabled) continue;
            foreach (var service in ServiceDomains(o, domain))
            {
                // Only other servers address a service: remote users must reach the rooms; the upload and proxy
                // services serve local users, so from afar only their disco info is missed (a warning).
                _problemsAreWarnings = !(o.Muc.Enabled && service == o.Muc.Subdomain + "." + domain);
                await CheckServiceAsync(service, "_xmpp-server._tcp.", s2s ? o.S2s.Port : 0, "Xmpp:S2s:Port", S2sResolver.DefaultPort, required: s2s, ct);
                await CheckServiceAsync(service, "_xmpps-server._tcp.", o.S2s.DirectTlsPort, "Xmpp:S2s:DirectTlsPort", 0, required: false, ct);
                checkedNames.Add(service);
                _problemsAreWarnings = false;
            }
            if (_dnsSilent) break;
        }
        var via = o.S2s.DnsServers.Count > 0 ? string.Join(", ", o.S2s.DnsServers) : "the system's resolvers";
        if (_dnsSilent)
        {
            _problems.Clear();
            _warnings.Clear();
            _warnings.Add($"dns: no answer from {via}; DNS records were not checked");
            return "dns: not checked";
        }
        return checkedNames.Count == 0
            ? "dns: not checked: every domain is a special-use name (RFC 6761) that public DNS does not hold"
            : $"dns: checked {string.Join(", ", checkedNames)} (via {via}; this host is {string.Join(", ", _here.Where(a => !IPAddress.IsLoopback(a)).DefaultIfEmpty(IPAddress.Loopback))})";
    }

    /// One SRV service of one name. port: what this server opens for it (0 = nothing); fallbackPort: where a peer tries
    /// the name's own addresses when there is no record (0 = no fallback: the service is found only through SRV).
    private async Task CheckServiceAsync(string name, string service, int port, string portOption, int fallbackPort, bool required, CancellationToken ct)
    {
        if (_dnsSilent) return;
        var query = service + name;
        var (records, error) = await SrvAsync(query, ct);
        if (_dnsSilent) return;
        if (error is not null)
        {
            Problem($"dns: {query}: the SRV look-up failed ({error})");
            return;
        }
        if (records.Count == 1 && records[0].Target.Value.TrimEnd('.') == "")
        {
            // RFC 2782: target "." says the service is decidedly not offered at this name.
            if (port > 0) Problem($"dns: {query}: the SRV record says the service is not offered (target '.'), but {portOption} is {port}");
            return;
        }
        if (records.Count == 0)
        {
            if (!required)
            {
                if (port > 0)
                    _warnings.Add($"dns: {query}: no SRV record; the port {port} ({portOption}) is found only through it (XEP-0368): "
                                  + $"{query} SRV 0 5 {port} <this host>.");
                return;
            }
            // RFC 6120 §3.2.2: without SRV records, peers try the name's own addresses on the default port.
            var (addresses, why) = await AddressesAsync(name, ct);
            if (_dnsSilent) return;
            if (addresses.Count == 0)
                Problem($"dns: {query}: no SRV record, and {name} has no A/AAAA record ({why}): publish {query} SRV 0 5 {port} <this host>.");
            else if (!addresses.Any(_here.Contains))
                Problem($"dns: {query}: no SRV record, and {name} resolves to {Join(addresses)}, not to this host; publish {query} SRV 0 5 {port} <this host>.");
            else if (port != fallbackPort)
                Problem($"dns: {query}: no SRV record, so peers try {name}:{fallbackPort}, but {portOption} is {port}; publish {query} SRV 0 5 {port} {name}.");
            return;
        }
        if (port == 0)
        {
            _warnings.Add($"dns: {query}: SRV records point peers here ({string.Join(", ", records.Select(Describe))}), but this server does not open that service ({portOption} is 0 or the service is off)");
            return;
        }
        bool anyHere = false;
        foreach (var r in records)
        {
            var target = r.Target.Value.TrimEnd('.');
            var (addresses, why) = await AddressesAsync(target, ct);
            if (_dnsSilent) return;
            if (addresses.Count == 0)
            {
                Problem($"dns: {query}: the target {target} has no A/AAAA record ({why})");
                continue;
            }
            if (!addresses.Any(_here.Contains))
            {
                Problem($"dns: {query}: {Describe(r)} resolves to {Join(addresses)}, which is not this host "
                              + "(another server, or set Xmpp:S2s:PublicAddresses when behind NAT)");
                continue;
            }
            anyHere = true;
            if (r.Port != port) Problem($"dns: {query}: {Describe(r)} points at port {r.Port}, but {portOption} is {port}");
        }
        if (!anyHere && records.Count > 1) Problem($"dns: {query}: none of its {records.Count} SRV records points at this host");
    }

    private void Problem(string line) => (_problemsAreWarnings ? _warnings : _problems).Add(line);

    private static string Describe(SrvRecord r) => $"{r.Target.Value.TrimEnd('.')}:{r.Port} (priority {r.Priority}, weight {r.Weight})";

    private static string Join(IEnumerable<IPAddress> addresses) => string.Join(", ", addresses);

    private async Task<(List<SrvRecord> Records, string? Error)> SrvAsync(string name, CancellationToken ct)
    {
        try
        {
            var response = await _dns.QueryAsync(name, QueryType.SRV, QueryClass.IN, ct);
            var records = response.Answers.SrvRecords().ToList();
            if (response.HasError && response.Header.ResponseCode != DnsHeaderResponseCode.NotExistentDomain) return ([], response.ErrorMessage);
            return (records, null);
        }
        catch (DnsResponseException ex) when (ex.Code == DnsResponseCode.ConnectionTimeout)
        {
            _dnsSilent = true;
            return ([], null);
        }
        catch (DnsResponseException ex)
        {
            return ([], ex.Message);
        }
    }

    private async Task<(List<IPAddress> Addresses, string Why)> AddressesAsync(string host, CancellationToken ct)
    {
        if (IPAddress.TryParse(host, out var literal)) return ([Normal(literal)], "");
        var found = new List<IPAddress>();
        string why = "no records";
        foreach (var type in new[] { QueryType.A, QueryType.AAAA })
        {
            try
            {
                var response = await _dns.QueryAsync(host, type, QueryClass.IN, ct);
                if (response.HasError) why = response.ErrorMessage;
                found.AddRange(response.Answers.AddressRecords().Select(a => Normal(a.Address)));
            }
            catch (DnsResponseException ex) when (ex.Code == DnsResponseCode.ConnectionTimeout)
            {
                _dnsSilent = true;
                return ([], "no answer");
            }
            catch (DnsResponseException ex)
            {
                why = ex.Message;
            }
        }
        return (found, why);
    }

    private static IPAddress Normal(IPAddress a) => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;

    private static IEnumerable<IPAddress> LocalAddresses()
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces()
                .Where(n => n.OperationalStatus != OperationalStatus.Down)
                .SelectMany(n => n.GetIPProperties().UnicastAddresses.Select(u => u.Address))
                .Append(IPAddress.Loopback).Append(IPAddress.IPv6Loopback)
                .ToList();
        }
        catch (NetworkInformationException)
        {
            return [IPAddress.Loopback, IPAddress.IPv6Loopback];
        }
    }
}
