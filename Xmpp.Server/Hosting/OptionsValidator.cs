using Xmpp.Protocol.Precis;

namespace Xmpp.Server.Hosting;

/// Checks options at start; one clear line per problem.
public static class OptionsValidator
{
    public static List<string> Validate(XmppServerOptions o)
    {
        var problems = new List<string>();
        foreach (var d in o.Domains)
        {
            try { Precis.PrepareDomain(d); }
            catch (FormatException ex) { problems.Add($"Xmpp:Domains: '{d}' is not a valid domain ({ex.Message})."); }
        }
        void Port(string name, int value)
        {
            if (value is < 0 or > 65535) problems.Add($"Xmpp:{name}: {value} is not a port number (0 disables, 1-65535).");
        }
        Port(nameof(o.C2sPort), o.C2sPort);
        Port(nameof(o.C2sTlsPort), o.C2sTlsPort);
        Port(nameof(o.HttpPort), o.HttpPort);
        Port("Proxy65:Port", o.Proxy65.Port);
        var used = new[] { o.C2sPort, o.C2sTlsPort, o.HttpPort, o.Proxy65.Port }.Where(p => p > 0).ToList();
        if (used.Count != used.Distinct().Count()) problems.Add("Xmpp: C2sPort, C2sTlsPort, HttpPort and Proxy65:Port must all differ.");
        if (o.C2sPort == 0 && o.C2sTlsPort == 0) problems.Add("Xmpp: both C2sPort and C2sTlsPort are 0, so no client can connect.");
        if (string.IsNullOrWhiteSpace(o.DataDir)) problems.Add("Xmpp:DataDir must name a folder.");
        if (string.IsNullOrWhiteSpace(o.CertDir)) problems.Add("Xmpp:CertDir must name a folder.");
        if (o.CertificateRescanSeconds < 0) problems.Add("Xmpp:CertificateRescanSeconds must be 0 (off) or more.");
        problems.AddRange(o.Acme.Validate());
        if (o.Acme is { Enabled: true, UsesHttp01: true } && used.Contains(o.Acme.Http01Port))
            problems.Add($"Xmpp:Acme:Http01Port {o.Acme.Http01Port} is already used by another listener (the challenge listener is plain HTTP).");
        problems.AddRange(StorageFactory.Validate(o.Storage));
        problems.AddRange(o.ProxyProtocol.Validate());
        if (o.DrainSeconds is < 0 or > 300) problems.Add($"Xmpp:DrainSeconds: {o.DrainSeconds} is outside 0-300.");
        problems.AddRange(Cluster.ClusterServices.Validate(o));
        void Positive(string name, double value, double min = 1)
        {
            if (value < min) problems.Add($"Xmpp:{name}: {value} is too small (minimum {min}).");
        }
        Positive("Limits:MaxStanzaBytes", o.Limits.MaxStanzaBytes, 10_000);
        Positive("Limits:MaxDepth", o.Limits.MaxDepth, 8);
        Positive("Limits:MaxAttributes", o.Limits.MaxAttributes, 8);
        Positive("Limits:MaxConnectionsPerIp", o.Limits.MaxConnectionsPerIp);
        Positive("ListenBacklog", o.ListenBacklog);
        Positive("Limits:MaxSendQueue", o.Limits.MaxSendQueue, 100);
        Positive("Limits:MaxResourcesPerAccount", o.Limits.MaxResourcesPerAccount);
        Positive("Limits:MaxRosterItems", o.Limits.MaxRosterItems, 0);
        Positive("Limits:TlsHandshakeTimeoutSeconds", o.Limits.TlsHandshakeTimeoutSeconds);
        var r = o.RateLimits;
        foreach (var (name, rate, burst) in new (string, double, int)[]
                 {
                     ("Message", r.MessagesPerSecond, r.MessageBurst), ("Presence", r.PresencePerSecond, r.PresenceBurst),
                     ("Iq", r.IqPerSecond, r.IqBurst), ("SubscriptionRequest", r.SubscriptionRequestsPerMinute, r.SubscriptionRequestBurst),
                     ("MucJoin", r.MucJoinsPerMinute, r.MucJoinBurst), ("MucNickChange", r.MucNickChangesPerMinute, r.MucNickChangeBurst),
                     ("UploadSlot", r.UploadSlotsPerMinute, r.UploadSlotBurst),
                 })
        {
            // A rate of 0 turns a limit off; a burst below 1 would refuse everything.
            if (rate < 0) problems.Add($"Xmpp:RateLimits: the {name} rate {rate} is negative (0 turns the limit off).");
            if (rate > 0 && burst < 1) problems.Add($"Xmpp:RateLimits:{name}Burst: {burst} is too small (minimum 1).");
        }
        Positive("RateLimits:PerIpFactor", r.PerIpFactor, 0);
        foreach (var jid in o.Blocked.Jids)
            if (!Xmpp.Protocol.Jid.TryParse(jid.Trim(), out var parsed) || parsed!.Local is null)
                problems.Add($"Xmpp:Blocked:Jids: '{jid}' is not a bare JID such as spammer@example.net.");
        Positive("Http:RequestHeadersTimeoutSeconds", o.Http.RequestHeadersTimeoutSeconds);
        Positive("Http:KeepAliveTimeoutSeconds", o.Http.KeepAliveTimeoutSeconds);
        Positive("Http:MinRequestBodyBytesPerSecond", o.Http.MinRequestBodyBytesPerSecond, 0);
        Positive("Http:MaxConnectionsPerIp", o.Http.MaxConnectionsPerIp, 0);
        Positive("Pep:MaxItemBytes", o.Pep.MaxItemBytes, 0);
        Positive("Auth:ScramIterations", o.Auth.ScramIterations, 4096);
        Positive("Auth:MaxAttemptsPerStream", o.Auth.MaxAttemptsPerStream, 2);
        Positive("Auth:FastTokenDays", o.Auth.FastTokenDays, 1);
        Positive("Invites:DefaultExpiryDays", o.Invites.DefaultExpiryDays);
        Positive("Invites:PostsPerMinutePerIp", o.Invites.PostsPerMinutePerIp);
        Positive("Offline:MaxMessagesPerAccount", o.Offline.MaxMessagesPerAccount);
        Positive("StreamManagement:ResumeTimeoutSeconds", o.StreamManagement.ResumeTimeoutSeconds, 0);
        Positive("StreamManagement:MaxUnackedStanzas", o.StreamManagement.MaxUnackedStanzas, 10);
        Positive("StreamManagement:AckRequestIntervalMilliseconds", o.StreamManagement.AckRequestIntervalMilliseconds, 0);
        Positive("StreamManagement:AckRequestEveryStanzas", o.StreamManagement.AckRequestEveryStanzas);
        Positive("Pep:MaxItemsPerNode", o.Pep.MaxItemsPerNode);
        Positive("Pep:MaxNodesPerAccount", o.Pep.MaxNodesPerAccount);
        Positive("Pep:StatusItemLifetimeSeconds", o.Pep.StatusItemLifetimeSeconds);
        Positive("Pep:ExpirySweepSeconds", o.Pep.ExpirySweepSeconds);
        Positive("Muc:MaxOccupantsPerRoom", o.Muc.MaxOccupantsPerRoom);
        Positive("Muc:MaxRoomsPerUser", o.Muc.MaxRoomsPerUser, 0);
        Positive("Muc:MaxHistoryMessages", o.Muc.MaxHistoryMessages, 0);
        Positive("Muc:MessagesPerSecond", o.Muc.MessagesPerSecond, 0.01);
        Positive("Muc:MessageBurst", o.Muc.MessageBurst);
        Positive("Muc:NotifyIntervalSeconds", o.Muc.NotifyIntervalSeconds, 0);
        if (o.Muc.NotifyAbsentMembers is not ("none" or "mentions" or "all"))
            problems.Add($"Xmpp:Muc:NotifyAbsentMembers: '{o.Muc.NotifyAbsentMembers}' is not none, mentions or all.");
        if (o.Muc.Enabled && !Precis.TryPrepareDomain(o.Muc.Subdomain + ".example", out _))
            problems.Add($"Xmpp:Muc:Subdomain: '{o.Muc.Subdomain}' is not a valid domain label.");
        Positive("Mam:MaxPageSize", o.Mam.MaxPageSize);
        Positive("Mam:MaxIds", o.Mam.MaxIds);
        if (o.Mam.DefaultMode is not ("always" or "roster" or "never"))
            problems.Add($"Xmpp:Mam:DefaultMode: '{o.Mam.DefaultMode}' is not always, roster or never.");
        if (o.Limits.ReadBytesPerSecond > 0 && o.Limits.ReadBurstBytes < o.Limits.MaxStanzaBytes)
            problems.Add("Xmpp:Limits:ReadBurstBytes must be at least MaxStanzaBytes, or one stanza could never be read at full speed.");
        Positive("Http:BoshMaxWaitSeconds", o.Http.BoshMaxWaitSeconds);
        Positive("Http:BoshInactivitySeconds", o.Http.BoshInactivitySeconds, 5);
        Positive("Http:BoshMaxSessions", o.Http.BoshMaxSessions);
        if (o.Http.PublicUrl.Length > 0 && !(Uri.TryCreate(o.Http.PublicUrl, UriKind.Absolute, out var hu) && hu.Scheme == "https"))
            problems.Add($"Xmpp:Http:PublicUrl: '{o.Http.PublicUrl}' is not an https URL.");
        foreach (var origin in o.Http.AllowedOrigins)
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var ou) || ou.Scheme is not ("https" or "http"))
                problems.Add($"Xmpp:Http:AllowedOrigins: '{origin}' is not an origin such as https://chat.example.org.");
        Positive("Upload:MaxMediaBytes", o.Upload.MaxMediaBytes);
        Positive("Upload:MaxFileBytes", o.Upload.MaxFileBytes);
        Positive("Upload:SlotLifetimeSeconds", o.Upload.SlotLifetimeSeconds, 10);
        Positive("Upload:CleanupIntervalSeconds", o.Upload.CleanupIntervalSeconds);
        if (o.Upload.QuotaBytesPerAccount < 0) problems.Add("Xmpp:Upload:QuotaBytesPerAccount must be 0 (unlimited) or more.");
        if (o.Upload.RetentionDays < 0) problems.Add("Xmpp:Upload:RetentionDays must be 0 (keep forever) or more.");
        if (o.Upload.Subdomain.Length == 0 || o.Upload.Subdomain.Contains('.'))
            problems.Add("Xmpp:Upload:Subdomain must be one DNS label, such as 'upload'.");
        if (o.Upload.PublicUrl.Length > 0 && !(Uri.TryCreate(o.Upload.PublicUrl, UriKind.Absolute, out var u) && u.Scheme is "https" or "http"))
            problems.Add($"Xmpp:Upload:PublicUrl: '{o.Upload.PublicUrl}' is not an http(s) URL.");
        Positive("ExternalServices:CredentialLifetimeSeconds", o.ExternalServices.CredentialLifetimeSeconds, 60);
        for (int i = 0; i < o.ExternalServices.Services.Count; i++)
        {
            var s = o.ExternalServices.Services[i];
            var name = $"Xmpp:ExternalServices:Services:{i}";
            if (string.IsNullOrWhiteSpace(s.Type)) problems.Add($"{name}:Type is required (stun, turn, turns).");
            if (string.IsNullOrWhiteSpace(s.Host)) problems.Add($"{name}:Host is required.");
            if (s.Port is < 1 or > 65535) problems.Add($"{name}:Port: {s.Port} is not a port number (1-65535).");
            if (s.Transport is not ("udp" or "tcp")) problems.Add($"{name}:Transport must be udp or tcp.");
        }
        Positive("Proxy65:MaxSessions", o.Proxy65.MaxSessions);
        Positive("Proxy65:ActivationTimeoutSeconds", o.Proxy65.ActivationTimeoutSeconds);
        if (o.Proxy65.MaxBytesPerSecond < 0) problems.Add("Xmpp:Proxy65:MaxBytesPerSecond must be 0 (unlimited) or more.");
        if (o.Proxy65.Subdomain.Length == 0 || o.Proxy65.Subdomain.Contains('.'))
            problems.Add("Xmpp:Proxy65:Subdomain must be one DNS label, such as 'proxy'.");
        // Every hosted service needs a subdomain of its own: the router hands everything at it to that one service.
        var services = new List<(string Key, string Label)>();
        if (o.Muc.Enabled) services.Add(("Muc", o.Muc.Subdomain));
        if (o.Upload.Enabled && o.HttpPort != 0) services.Add(("Upload", o.Upload.Subdomain));
        if (o.Proxy65.Port > 0) services.Add(("Proxy65", o.Proxy65.Subdomain));
        foreach (var clash in services.GroupBy(s => s.Label, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
            problems.Add($"Xmpp:{string.Join(" and Xmpp:", clash.Select(s => s.Key + ":Subdomain"))} must differ (all are '{clash.Key}').");
        var s2s = o.S2s;
        if (s2s.Enabled)
        {
            Port("S2s:Port", s2s.Port);
            Port("S2s:DirectTlsPort", s2s.DirectTlsPort);
            var all = used.Concat(new[] { s2s.Port, s2s.DirectTlsPort }.Where(p => p > 0)).ToList();
            if (all.Count != all.Distinct().Count()) problems.Add("Xmpp:S2s: Port and DirectTlsPort must differ from each other and from the other listeners.");
            foreach (var (domain, target) in s2s.Peers)
                if (!Xmpp.Server.Links.S2s.S2sResolver.TryParsePeer(target, out _))
                    problems.Add($"Xmpp:S2s:Peers:{domain}: '{target}' is not host:port or tls://host:port.");
            if (s2s.TrustedCaFile.Length > 0 && !File.Exists(s2s.TrustedCaFile))
                problems.Add($"Xmpp:S2s:TrustedCaFile: {s2s.TrustedCaFile} does not exist.");
            Positive("S2s:MaxStanzaBytes", s2s.MaxStanzaBytes, 10_000);
            Positive("S2s:MaxLinksPerDomain", s2s.MaxLinksPerDomain);
            Positive("S2s:MaxConnectionsPerIp", s2s.MaxConnectionsPerIp);
            Positive("S2s:ReadBytesPerSecond", s2s.ReadBytesPerSecond, 0);
            if (s2s.StanzasPerSecondPerDomain < 0)
                problems.Add($"Xmpp:S2s:StanzasPerSecondPerDomain: {s2s.StanzasPerSecondPerDomain} is negative (0 turns the limit off).");
            if (s2s.StanzasPerSecondPerDomain > 0 && s2s.StanzaBurstPerDomain < 1)
                problems.Add($"Xmpp:S2s:StanzaBurstPerDomain: {s2s.StanzaBurstPerDomain} is too small (minimum 1).");
            if (s2s.ReadBytesPerSecond > 0 && s2s.ReadBurstBytes < s2s.MaxStanzaBytes)
                problems.Add("Xmpp:S2s:ReadBurstBytes must be at least MaxStanzaBytes, or one stanza could never be read at full speed.");
            Positive("S2s:IdleTimeoutSeconds", s2s.IdleTimeoutSeconds);
            Positive("S2s:ConnectTimeoutSeconds", s2s.ConnectTimeoutSeconds);
            Positive("S2s:SetupTimeoutSeconds", s2s.SetupTimeoutSeconds);
            Positive("S2s:MaxQueuedStanzas", s2s.MaxQueuedStanzas);
            Positive("S2s:PingIntervalSeconds", s2s.PingIntervalSeconds, 0);
            Positive("S2s:PingTimeoutSeconds", s2s.PingTimeoutSeconds);
            if (s2s.AllowListOnly && s2s.AllowedDomains.Count == 0)
                problems.Add("Xmpp:S2s:AllowListOnly is on but AllowedDomains is empty, so no server could be reached; set Enabled to false instead.");
        }
        foreach (var server in o.S2s.DnsServers)
            if (!Xmpp.Server.Links.S2s.S2sResolver.TryParseDnsServer(server, out _))
                problems.Add($"Xmpp:S2s:DnsServers: '{server}' is not an IP address with an optional :port.");
        foreach (var a in o.S2s.PublicAddresses)
            if (!System.Net.IPAddress.TryParse(a, out _)) problems.Add($"Xmpp:S2s:PublicAddresses: '{a}' is not an IP address.");
        Positive("Push:MinIntervalSeconds", o.Push.MinIntervalSeconds, 0);
        Positive("Push:MaxErrors", o.Push.MaxErrors);
        Positive("Push:TimeoutSeconds", o.Push.TimeoutSeconds);
        var comp = o.Components;
        if (comp.Enabled)
        {
            Port("Components:Port", comp.Port);
            if (comp.Port > 0 && used.Contains(comp.Port) || s2s.Enabled && comp.Port > 0 && (comp.Port == s2s.Port || comp.Port == s2s.DirectTlsPort))
                problems.Add($"Xmpp:Components:Port: {comp.Port} is already used by another listener.");
            if (comp.Domains.Count == 0) problems.Add("Xmpp:Components:Enabled is on but Domains is empty; add a domain with its Secret or turn it off.");
            foreach (var (domain, c) in comp.Domains)
            {
                if (!Precis.TryPrepareDomain(domain.Trim().TrimEnd('.'), out _))
                    problems.Add($"Xmpp:Components:Domains: '{domain}' is not a valid domain.");
                else if (o.Domains.Any(d => string.Equals(d, domain.Trim().TrimEnd('.'), StringComparison.OrdinalIgnoreCase)))
                    problems.Add($"Xmpp:Components:Domains:{domain}: a served domain cannot also be a component.");
                else if (services.Any(s => o.Domains.Any(d => string.Equals($"{s.Label}.{d}", domain.Trim().TrimEnd('.'), StringComparison.OrdinalIgnoreCase))))
                    problems.Add($"Xmpp:Components:Domains:{domain}: the server already hosts a service (MUC, upload or proxy) there.");
                if (string.IsNullOrEmpty(c.Secret)) problems.Add($"Xmpp:Components:Domains:{domain}:Secret is required.");
            }
            foreach (var a in comp.ListenAddresses)
                if (!System.Net.IPAddress.TryParse(a, out _)) problems.Add($"Xmpp:Components:ListenAddresses: '{a}' is not an IP address.");
            Positive("Components:MaxStanzaBytes", comp.MaxStanzaBytes, 10_000);
            Positive("Components:HandshakeTimeoutSeconds", comp.HandshakeTimeoutSeconds);
            Positive("Components:PingIntervalSeconds", comp.PingIntervalSeconds, 0);
            Positive("Components:PingTimeoutSeconds", comp.PingTimeoutSeconds);
            if (comp.ReadBytesPerSecond > 0 && comp.ReadBurstBytes < comp.MaxStanzaBytes)
                problems.Add("Xmpp:Components:ReadBurstBytes must be at least MaxStanzaBytes, or one stanza could never be read at full speed.");
        }
        foreach (var a in o.ListenAddresses)
            if (a != "any" && !System.Net.IPAddress.TryParse(a, out _)) problems.Add($"Xmpp:ListenAddresses: '{a}' is not an IP address or 'any'.");
        return problems;
    }
}
