using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Profiles;

/// An account's vcard-temp vCard as other modules use it (XEP-0398 avatar conversion).
public interface IVCardService
{
    /// The stored vCard, or null when there is none.
    ValueTask<Element?> GetAsync(string user);

    /// Replaces the vCard (an empty one removes it) and tells every change handler, as a client's set does; false,
    /// storing nothing, when it is larger than a client may store.
    ValueTask<bool> SetAsync(string user, Element vcard);

    /// Calls the handler after every change of any account's vCard, with the user and the new vCard.
    void OnChange(Func<string, Element, ValueTask> handler);
}
