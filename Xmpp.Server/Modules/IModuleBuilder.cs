using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules;

/// What a module can contribute; everything is declared once in IXmppModule.Register.
public interface IModuleBuilder
{
    /// Handles IQ get/set whose first child is {ns}name, sent to the given target.
    void Iq(IqTarget target, string name, string ns, IqHandler handler);

    /// A disco#info feature of the server (XEP-0030).
    void ServerFeature(string feature);

    /// A disco#info feature of every account's bare JID.
    void AccountFeature(string feature);

    void ServerIdentity(string category, string type, string name);

    /// A disco#info identity of every account's bare JID (e.g. pubsub/pep, XEP-0163 §6.1).
    void AccountIdentity(string category, string type, string name);

    /// Contributes disco#items of an account's bare JID (no node), for the asker (first Jid) about the account (second).
    void AccountItems(Func<Jid, Jid, ValueTask<IEnumerable<Element>>> items);

    /// A stream feature child offered at the given stage; the function may return null to offer nothing.
    void StreamFeature(StreamFeatureStage stage, Func<StreamFeatureContext, Element?> feature);

    /// A hook at a routing point; lower order runs first.
    void Hook(HookPoint point, int order, StanzaHook hook);

    /// Handles a top-level element other than a stanza (a "nonza", e.g. XEP-0352 &lt;active/&gt;) on an established stream.
    void StreamElement(string name, string ns, Func<ClientSession, Element, ValueTask> handler);

    void OnSessionBound(Func<ClientSession, ValueTask> handler);

    /// The session sent its initial presence (RFC 6121 §4.2).
    void OnSessionAvailable(Func<ClientSession, ValueTask> handler);

    void OnSessionClosed(Func<ClientSession, ValueTask> handler);

    void OnAccountDeleted(Func<string, ValueTask> handler);
}
