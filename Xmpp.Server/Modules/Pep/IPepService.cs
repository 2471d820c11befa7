using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Pep;

/// The PEP service (XEP-0163) as other modules use it: publish or retract on an account's behalf (notifications go out as
/// for a client's publish), read items without access checks, and learn about every change.
public interface IPepService
{
    /// Publishes a payload as the account owner; itemId null makes one up. publishOptions are XEP-0060 §7.1.5
    /// preconditions (and the configuration of a node this creates). Returns the item id, or the error.
    ValueTask<(string? ItemId, PepError? Error)> PublishAsync(Jid owner, string node, string? itemId, Element payload, DataForm? publishOptions = null);

    /// Removes one item, notifying when the node says so; false when there was no such item.
    ValueTask<bool> RetractAsync(Jid owner, string node, string itemId);

    /// One item by id, or the latest when itemId is null; null when missing or expired.
    ValueTask<PepItem?> GetItemAsync(Jid owner, string node, string? itemId = null);

    /// The live items of a node, oldest first; empty when the node does not exist.
    ValueTask<IReadOnlyList<PepItem>> GetItemsAsync(Jid owner, string node);

    /// Calls the handler after every change to a node of this name on any account; dispose to stop.
    IDisposable OnChange(string node, Func<PepChange, ValueTask> handler);
}
