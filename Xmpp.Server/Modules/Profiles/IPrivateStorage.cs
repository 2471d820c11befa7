using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Profiles;

/// An account's XEP-0049 private XML as other modules use it (XEP-0411 / XEP-0402 bookmark conversion).
public interface IPrivateStorage
{
    /// The fragment stored under a namespace, or null.
    ValueTask<Element?> GetAsync(string user, string ns);

    /// Replaces the fragment of the element's namespace, as a client's set does; false when over the size limit.
    ValueTask<bool> SetAsync(string user, Element fragment);

    /// Calls the handler after every fragment a set stores, with the user and the fragment.
    void OnChange(Func<string, Element, ValueTask> handler);
}
