// XEP-0060 §16.4.4: the pubsub#node_config fields a PEP node supports.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;

namespace Xmpp.Server.Modules.Pep;

/// The configuration of one PEP node. Immutable: a change makes a new record, so "applying these options changes
/// nothing" is how XEP-0060 §7.1.5 publish-options preconditions are checked.
public sealed record PepNodeConfig
{
    /// MaxItems value meaning "as many as the service allows" (pubsub#max_items 'max', XEP-0060 §16.4.4).
    public const int Max = -1;

    /// XEP-0163 §5 recommended defaults: presence access, notifications with payloads, the last item on presence.
    public PepAccessModel Access { get; init; } = PepAccessModel.Presence;
    public bool PersistItems { get; init; } = true;
    public int MaxItems { get; init; } = 1;
    public string SendLastPublishedItem { get; init; } = "on_sub_and_presence";
    public bool NotifyRetract { get; init; } = true;
    public bool NotifyDelete { get; init; } = true;
    public bool DeliverNotifications { get; init; } = true;
    public bool DeliverPayloads { get; init; } = true;

    /// Seconds after which an item is removed (pubsub#item_expire); 0 keeps items forever.
    public int ItemExpireSeconds { get; init; }
    public string Title { get; init; } = "";

    /// pubsub#roster_groups_allowed for the roster access model, sorted and joined by newlines so that records compare
    /// by value; empty admits every contact in the roster.
    public string RosterGroups { get; init; } = "";

    public IReadOnlyList<string> RosterGroupList => RosterGroups.Length == 0 ? [] : RosterGroups.Split('\n');

    public static readonly string[] SendLastValues = ["never", "on_sub", "on_sub_and_presence"];
    public static readonly string[] AccessValues = ["open", "presence", "roster", "whitelist"];

    /// The number of items the node keeps, with 'max' resolved to the service limit.
    public int EffectiveMaxItems(int serviceMax) => MaxItems == Max ? serviceMax : Math.Min(MaxItems, serviceMax);

    public bool SendsLastOnPresence => SendLastPublishedItem == "on_sub_and_presence";

    /// Applies the fields of a submitted form (FORM_TYPE ignored); returns null and the offending field when a field is
    /// unknown or its value unsupported (XEP-0060 §8.2.5.3 not-acceptable, §7.1.5 precondition-not-met).
    public PepNodeConfig? Apply(DataForm form, int serviceMax, out string? badField)
    {
        var c = this;
        badField = null;
        foreach (var name in form.FieldNames)
        {
            if (name == "FORM_TYPE") continue;
            var v = form.Value(name);
            var values = form.Values(name);
            PepNodeConfig? next = name switch
            {
                "pubsub#access_model" => ParseAccess(v) is { } a ? c with { Access = a } : null,
                "pubsub#persist_items" => form.Bool(name, out _) is { } b1 ? c with { PersistItems = b1 } : null,
                "pubsub#max_items" => ParseMaxItems(v, serviceMax) is { } m ? c with { MaxItems = m } : null,
                "pubsub#send_last_published_item" => v is not null && SendLastValues.Contains(v) ? c with { SendLastPublishedItem = v } : null,
                "pubsub#notify_retract" => form.Bool(name, out _) is { } b2 ? c with { NotifyRetract = b2 } : null,
                "pubsub#notify_delete" => form.Bool(name, out _) is { } b3 ? c with { NotifyDelete = b3 } : null,
                "pubsub#deliver_notifications" => form.Bool(name, out _) is { } b4 ? c with { DeliverNotifications = b4 } : null,
                "pubsub#deliver_payloads" => form.Bool(name, out _) is { } b5 ? c with { DeliverPayloads = b5 } : null,
                "pubsub#item_expire" => ParseSeconds(v) is { } s ? c with { ItemExpireSeconds = s } : null,
                "pubsub#title" => c with { Title = v ?? "" },
                "pubsub#roster_groups_allowed" => values.Any(g => g.Length == 0 || g.Contains('\n')) ? null
                    : c with { RosterGroups = string.Join('\n', values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)) },
                _ => null,
            };
            if (next is null)
            {
                badField = name;
                return null;
            }
            c = next;
        }
        return c;
    }

    /// The configuration as a form of a type: "form" for XEP-0060 §8.2.1 configure, "submit" for storage.
    public DataForm ToForm(string type)
    {
        var form = new DataForm(type, Ns.PubSubNodeConfig);
        form.AddField("pubsub#access_model", "list-single", "Who may subscribe and retrieve items", [AccessName(Access)], Labelled(AccessValues));
        form.AddField("pubsub#persist_items", "boolean", "Persist items to storage", [Bool(PersistItems)]);
        form.AddField("pubsub#max_items", "text-single", "Max number of items to persist",
            [MaxItems == Max ? "max" : MaxItems.ToString(CultureInfo.InvariantCulture)]);
        form.AddField("pubsub#send_last_published_item", "list-single", "When to send the last published item", [SendLastPublishedItem], Labelled(SendLastValues));
        form.AddField("pubsub#notify_retract", "boolean", "Notify subscribers when items are removed from the node", [Bool(NotifyRetract)]);
        form.AddField("pubsub#notify_delete", "boolean", "Notify subscribers when the node is deleted", [Bool(NotifyDelete)]);
        form.AddField("pubsub#deliver_notifications", "boolean", "Deliver event notifications", [Bool(DeliverNotifications)]);
        form.AddField("pubsub#deliver_payloads", "boolean", "Deliver payloads with event notifications", [Bool(DeliverPayloads)]);
        form.AddField("pubsub#item_expire", "text-single", "Seconds after which items expire (0: never)",
            [ItemExpireSeconds.ToString(CultureInfo.InvariantCulture)]);
        form.AddField("pubsub#title", "text-single", "A friendly name for the node", [Title]);
        form.AddField("pubsub#roster_groups_allowed", "list-multi", "Roster groups allowed to retrieve items", [.. RosterGroupList]);
        return form;
    }

    /// List options labelled with their own values.
    private static IEnumerable<(string Label, string Value)> Labelled(IEnumerable<string> values) => values.Select(v => (v, v));

    public static string AccessName(PepAccessModel access) => AccessValues[(int)access];

    private static PepAccessModel? ParseAccess(string? v) => Array.IndexOf(AccessValues, v) is var i and >= 0 ? (PepAccessModel)i : null;

    private static int? ParseMaxItems(string? v, int serviceMax)
    {
        if (v == "max") return Max;
        return int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1 && n <= serviceMax ? n : null;
    }

    private static int? ParseSeconds(string? v) =>
        int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    private static string Bool(bool b) => b ? "true" : "false";
}
