using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;

namespace Xmpp.Server.Modules.Pep;

/// The XEP-0223 publish-options of a private, many-item node, as XEP-0402 §5 and XEP-0490 §4.2 ask for: items
/// persisted, as many as the service allows, never pushed on presence, readable only by the owner.
public static class PrivateNodeOptions
{
    public static DataForm Create() => new DataForm("submit", Ns.PubSubPublishOptions)
        .AddField("pubsub#persist_items", null, "true")
        .AddField("pubsub#max_items", null, "max")
        .AddField("pubsub#send_last_published_item", null, "never")
        .AddField("pubsub#access_model", null, "whitelist");

    /// Publishes with the private options; a node the user already configured otherwise keeps its configuration
    /// (XEP-0060 §7.1.5 would refuse the options, and the item still belongs there).
    public static async ValueTask<PepError?> PublishAsync(IPepService pep, Jid owner, string node, string itemId, Xmpp.Protocol.Xml.Element payload)
    {
        var (_, error) = await pep.PublishAsync(owner, node, itemId, payload, Create());
        if (error?.PubSubCondition == "precondition-not-met") (_, error) = await pep.PublishAsync(owner, node, itemId, payload);
        return error;
    }
}
