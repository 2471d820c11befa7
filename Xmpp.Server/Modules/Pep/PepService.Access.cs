// XEP-0060 §4.5 access models as XEP-0163 §5 uses them; errors from XEP-0060 §6.5.9 (retrieve items).
using Xmpp.Protocol;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Pep;

public sealed partial class PepService
{
    /// Whether an entity may see a node's items (and learn of the node): null when it may, else the XEP-0060 error.
    /// The owner always may; members (affiliation "member") pass every model.
    public async ValueTask<PepError?> CheckReadAsync(Jid owner, PepNodeSnapshot node, Jid requester)
    {
        var asker = requester.Bare;
        if (asker == owner.Bare || node.Members.Contains(asker.ToString())) return null;
        switch (node.Config.Access)
        {
            case PepAccessModel.Open:
                return null;
            case PepAccessModel.Presence:
                // A contact with a subscription to the owner's presence ("from" or "both" in the owner's roster).
                return await rosters.FindAsync(owner.Bare, asker) is { InRoster: true, Subscription: Subscription.From or Subscription.Both }
                    ? null
                    : new PepError(StanzaErrors.NotAuthorized, "presence-subscription-required");
            case PepAccessModel.Roster:
                // Contacts in one of pubsub#roster_groups_allowed, or anyone in the roster when no group is named.
                var groups = node.Config.RosterGroupList;
                return await rosters.FindAsync(owner.Bare, asker) is { InRoster: true } item
                    && (groups.Count == 0 || item.Groups.Any(g => groups.Contains(g, StringComparer.Ordinal)))
                    ? null
                    : new PepError(StanzaErrors.NotAuthorized, "not-in-roster-group");
            default:
                return new PepError(StanzaErrors.NotAllowed, "closed-node");
        }
    }
}
