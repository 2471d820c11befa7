// XEP-0297: Stanza Forwarding, with XEP-0203 delayed delivery stamps.
using Xmpp.Protocol.Xml;

namespace Xmpp.Protocol.Payloads;

/// <summary>Wraps a stanza in &lt;forwarded xmlns='urn:xmpp:forward:0'/&gt;.</summary>
public static class Forwarded
{
    /// <summary>A &lt;forwarded/&gt; holding a XEP-0203 &lt;delay/&gt; with the stamp (when given) and the stanza.</summary>
    public static Element Wrap(Element stanza, DateTimeOffset? stamp = null)
    {
        var forwarded = new Element("forwarded", Ns.Forward);
        if (stamp is { } s) forwarded.Add(new Element("delay", Ns.Delay).SetAttr("stamp", DateTimeProfile.Format(s)));
        return forwarded.Add(stanza);
    }
}
