// XEP-0490: Message Displayed Synchronization — the server-assist part; the node itself is ordinary PEP.
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Server.Modules.Carbons;
using Xmpp.Server.Modules.Pep;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Mds;

/// A client may put the MDS &lt;displayed/&gt; beside its XEP-0333 marker in one message to the contact: the server
/// takes it out, publishes it as the chat's item of the 'urn:xmpp:mds:displayed:0' node on the sender's account (so
/// the user's other devices get the PEP notification) and routes the rest of the message as usual.
[Xep("XEP-0490", "1.0.1", "server assist: the displayed element in a message becomes the chat's PEP item")]
public sealed class MdsModule(IPepService pep, IRouter router, ILogger<MdsModule> logger) : IXmppModule
{
    /// After blocking (a refused message publishes nothing) and before carbons copy the message to the sender's
    /// other devices: XEP-0490 §5.2 wants the element gone before any reflection or archiving.
    public const int HookOrder = CarbonsModule.DeliverOrder - 100;

    public void Register(IModuleBuilder module)
    {
        module.AccountFeature(Ns.MdsServerAssist);
        module.Hook(HookPoint.Inbound, HookOrder, AssistAsync);
    }

    private async ValueTask<bool> AssistAsync(StanzaContext c)
    {
        if (c.Name != "message" || c.Type == "error") return false;
        var displayed = c.Stanza.Child("displayed", Ns.MdsDisplayed);
        if (displayed is null) return false;
        // XEP-0490 §5.3: strip it always, so the contact never learns the stanza-id.
        c.Stanza.RemoveAll("displayed", Ns.MdsDisplayed);
        var to = c.Stanza.Attr("to");
        if (to is null)
        {
            await router.BounceAsync(c.Stanza, StanzaErrors.BadRequest, "Server-assisted displayed needs the chat's JID in 'to'");
            return true;
        }
        // §4.6: a message that carried nothing else must not exist; refusing it keeps a contact from being sent
        // empty stanzas when a client relies on server assist alone.
        if (!c.Stanza.Elements().Any())
        {
            await router.BounceAsync(c.Stanza, StanzaErrors.BadRequest, "A message must not carry only the MDS displayed element");
            return true;
        }
        // §4.1: the payload holds exactly one stanza-id.
        if (displayed.Elements("stanza-id", Ns.StanzaId).Count() != 1)
        {
            await router.BounceAsync(c.Stanza, StanzaErrors.BadRequest, "The MDS displayed element holds exactly one stanza-id");
            return true;
        }
        // §5.2: the 'to' attribute is the item id verbatim; the node gets the private configuration (§4.2).
        var error = await PrivateNodeOptions.PublishAsync(pep, c.From.Bare, Ns.MdsDisplayed, to, displayed);
        if (error is not null)
            logger.LogWarning("Server-assisted MDS publish for {User} failed: {Condition} {Text}", c.From.Bare, error.Condition, error.Text);
        return false;
    }
}
