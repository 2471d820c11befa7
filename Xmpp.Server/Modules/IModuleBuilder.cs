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

    /// Answers disco#info and disco#items for nodes of a served domain's JID (XEP-0030 §3.2, §4.2): called with the
    /// asker, the domain and the node, it returns null for a node that is not the module's or not visible to the asker.
    void ServerNode(Func<Jid, string, string, DiscoNode?> node);

    /// An XEP-0128 extended-information form in the server's disco#info (no node); null adds nothing. It must not
    /// change while the server runs: the XEP-0115 hash in stream features covers it.
    void ServerInfoForm(Func<Element?> form);

    /// A stream feature child offered at the given stage; the function may return null to offer nothing.
    void StreamFeature(StreamFeatureStage stage, Func<StreamFeatureContext, Element?> feature);

    /// A hook at a routing point; lower order runs first.
    void Hook(HookPoint point, int order, StanzaHook hook);

    /// Handles a top-level element other than a stanza (a "nonza", e.g. XEP-0352 &lt;active/&gt;) on an established stream.
    void StreamElement(string name, string ns, Func<ClientSession, Element, ValueTask> handler);

    /// A XEP-0386 Bind 2 inline feature: advertised as &lt;feature var=ns/&gt; in the SASL2 bind feature, and called with
    /// the new session and the client's child of &lt;bind/&gt; in that namespace, after the resource is chosen but before
    /// the session is reachable or &lt;success/&gt; is sent. A returned element is put into &lt;bound/&gt;.
    void Bind2Inline(string ns, Func<ClientSession, Element, ValueTask<Element?>> handler);

    void OnSessionBound(Func<ISession, ValueTask> handler);

    /// The session sent its initial presence (RFC 6121 §4.2).
    void OnSessionAvailable(Func<ISession, ValueTask> handler);

    void OnSessionClosed(Func<ISession, ValueTask> handler);

    /// The session lost its connection and now waits detached to be resumed (XEP-0198); it is still bound. The list
    /// holds the stanzas it was sent and never acknowledged.
    void OnSessionDetached(Func<ISession, IReadOnlyList<Element>, ValueTask> handler);

    void OnAccountDeleted(Func<string, ValueTask> handler);

    /// Hosts a service on a domain of its own (conference.example.org, upload.example.org), listed once in disco#items
    /// of the served parent domain. Everything addressed to that domain or a JID at it is routed to the service, never
    /// to local accounts: IQ get/set to the domain itself go to its ServiceIq handlers. Stanzas of any kind to JIDs with
    /// a local part (MUC rooms and occupants) go to entities when it is given (a client's presence passes the outbound
    /// presence hooks first); without it, IQ get/set to such JIDs also go to the ServiceIq handlers.
    /// With wholeDomain, entities takes every stanza to the domain and to any JID at it (an XEP-0114 component's link).
    void Service(string domain, string parentDomain, string name, Func<StanzaContext, ValueTask>? entities = null, bool wholeDomain = false);

    /// Handles IQ get/set whose first child is {ns}name, sent to a domain declared with Service.
    void ServiceIq(string domain, string name, string ns, IqHandler handler);
}
