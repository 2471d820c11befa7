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
        var used = new[] { o.C2sPort, o.C2sTlsPort, o.HttpPort }.Where(p => p > 0).ToList();
        if (used.Count != used.Distinct().Count()) problems.Add("Xmpp: C2sPort, C2sTlsPort and HttpPort must all differ.");
        if (o.C2sPort == 0 && o.C2sTlsPort == 0) problems.Add("Xmpp: both C2sPort and C2sTlsPort are 0, so no client can connect.");
        if (string.IsNullOrWhiteSpace(o.DataDir)) problems.Add("Xmpp:DataDir must name a folder.");
        if (string.IsNullOrWhiteSpace(o.CertDir)) problems.Add("Xmpp:CertDir must name a folder.");
        void Positive(string name, double value, double min = 1)
        {
            if (value < min) problems.Add($"Xmpp:{name}: {value} is too small (minimum {min}).");
        }
        Positive("Limits:MaxStanzaBytes", o.Limits.MaxStanzaBytes, 10_000);
        Positive("Limits:MaxDepth", o.Limits.MaxDepth, 8);
        Positive("Limits:MaxAttributes", o.Limits.MaxAttributes, 8);
        Positive("Limits:MaxConnectionsPerIp", o.Limits.MaxConnectionsPerIp);
        Positive("Limits:MaxSendQueue", o.Limits.MaxSendQueue, 100);
        Positive("Limits:MaxResourcesPerAccount", o.Limits.MaxResourcesPerAccount);
        Positive("Auth:ScramIterations", o.Auth.ScramIterations, 4096);
        Positive("Auth:MaxAttemptsPerStream", o.Auth.MaxAttemptsPerStream, 2);
        Positive("Offline:MaxMessagesPerAccount", o.Offline.MaxMessagesPerAccount);
        Positive("StreamManagement:ResumeTimeoutSeconds", o.StreamManagement.ResumeTimeoutSeconds, 0);
        Positive("StreamManagement:MaxUnackedStanzas", o.StreamManagement.MaxUnackedStanzas, 10);
        Positive("Pep:MaxItemsPerNode", o.Pep.MaxItemsPerNode);
        Positive("Pep:MaxNodesPerAccount", o.Pep.MaxNodesPerAccount);
        Positive("Pep:StatusItemLifetimeSeconds", o.Pep.StatusItemLifetimeSeconds);
        Positive("Pep:ExpirySweepSeconds", o.Pep.ExpirySweepSeconds);
        if (o.Limits.ReadBytesPerSecond > 0 && o.Limits.ReadBurstBytes < o.Limits.MaxStanzaBytes)
            problems.Add("Xmpp:Limits:ReadBurstBytes must be at least MaxStanzaBytes, or one stanza could never be read at full speed.");
        foreach (var a in o.ListenAddresses)
            if (a != "any" && !System.Net.IPAddress.TryParse(a, out _)) problems.Add($"Xmpp:ListenAddresses: '{a}' is not an IP address or 'any'.");
        return problems;
    }
}
