// XEP-0060 §7 (publish, publish-options, retract), §8.1 (create) and §6.5 (items) as PEP uses them.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Pep;

public sealed partial class PepModule
{
    private async ValueTask PubSubAsync(IqContext c)
    {
        var actions = c.Payload.Elements().Where(e => e.Namespace == Ns.PubSub).ToList();
        var action = actions.FirstOrDefault(e => e.Name is not ("publish-options" or "configure")) ?? actions.FirstOrDefault();
        switch (c.IsSet, action?.Name)
        {
            case (true, "publish"): await PublishAsync(c, action!); break;
            case (true, "retract"): await RetractAsync(c, action!); break;
            case (true, "create"): await CreateAsync(c, action!); break;
            case (false, "items"): await ItemsAsync(c, action!); break;
            case (false, "affiliations"): await MyAffiliationsAsync(c); break;
            case (_, "subscribe" or "unsubscribe" or "options" or "subscriptions"):
                // PEP subscriptions are implicit (XEP-0163 §4.1, from presence and +notify); explicit ones are not offered.
                Fail(c, new PepError(StanzaErrors.FeatureNotImplemented, "unsupported", Feature: action!.Name == "subscriptions" ? "retrieve-subscriptions" : "subscribe"));
                break;
            default:
                c.Error(StanzaErrors.BadRequest, "no supported pubsub action");
                break;
        }
    }

    /// XEP-0060 §7.1: exactly one item with exactly one payload; publish-options (§7.1.5) are preconditions.
    private async ValueTask PublishAsync(IqContext c, Element publish)
    {
        if (!RequireOwner(c)) return;
        if (publish.Attr("node") is not { Length: > 0 } node)
        {
            Fail(c, new PepError(StanzaErrors.BadRequest, "nodeid-required"));
            return;
        }
        var items = publish.Elements("item", Ns.PubSub).ToList();
        if (items.Count != 1)
        {
            // §7.1.3.6 no item; publishing several items at once ("multi-items") is not offered.
            Fail(c, new PepError(StanzaErrors.BadRequest, items.Count == 0 ? "item-required" : "invalid-payload"));
            return;
        }
        var payloads = items[0].Elements().ToList();
        if (payloads.Count != 1)
        {
            Fail(c, new PepError(StanzaErrors.BadRequest, payloads.Count == 0 ? "payload-required" : "invalid-payload"));
            return;
        }
        DataForm? options = null;
        if (c.Payload.Child("publish-options", Ns.PubSub) is { } po && po.Child("x", Ns.DataForms) is { } x)
        {
            // §7.1.5: a publish-options form; a cancelled or result form, or another FORM_TYPE, is not one.
            if (!DataForm.TryParse(x, out options, out _) || options.Type is "cancel" or "result" || (options.FormType is { } ft && ft != Ns.PubSubPublishOptions))
            {
                c.Error(StanzaErrors.BadRequest, "publish-options must be a " + Ns.PubSubPublishOptions + " form");
                return;
            }
        }
        var (id, error) = await pep.PublishAsync(c.To.Bare, node, items[0].Attr("id"), payloads[0], options);
        if (error is not null)
        {
            Fail(c, error);
            return;
        }
        c.Result(new Element("pubsub", Ns.PubSub).Add(new Element("publish", Ns.PubSub).SetAttr("node", node)
            .Add(new Element("item", Ns.PubSub).SetAttr("id", id))));
    }

    /// XEP-0060 §7.2: notify='true' forces a retraction notification; otherwise pubsub#notify_retract decides.
    private async ValueTask RetractAsync(IqContext c, Element retract)
    {
        if (!RequireOwner(c)) return;
        var node = retract.Attr("node");
        var ids = retract.Elements("item", Ns.PubSub).Select(i => i.Attr("id")).ToList();
        if (string.IsNullOrEmpty(node)) { Fail(c, new PepError(StanzaErrors.BadRequest, "nodeid-required")); return; }
        if (ids.Count != 1 || string.IsNullOrEmpty(ids[0])) { Fail(c, new PepError(StanzaErrors.BadRequest, "item-required")); return; }
        // The notify attribute is an xs:boolean.
        bool? notify = retract.Attr("notify") switch { "1" or "true" => true, "0" or "false" => false, _ => null };
        if (await pep.RetractCoreAsync(c.To.Bare, node, ids[0]!, notify) is { } error) { Fail(c, error); return; }
        c.Result();
    }

    /// XEP-0060 §8.1.2 create with an optional §8.1.3 configure form; instant (unnamed) nodes are not offered.
    private async ValueTask CreateAsync(IqContext c, Element create)
    {
        if (!RequireOwner(c)) return;
        if (create.Attr("node") is not { Length: > 0 } node)
        {
            Fail(c, new PepError(StanzaErrors.NotAcceptable, "nodeid-required"));
            return;
        }
        DataForm? form = null;
        if (c.Payload.Child("configure", Ns.PubSub)?.Child("x", Ns.DataForms) is { } x && !DataForm.TryParse(x, out form, out _))
        {
            c.Error(StanzaErrors.BadRequest, "malformed configuration form");
            return;
        }
        if (await pep.CreateAsync(c.To.Bare, node, form) is { } error) { Fail(c, error); return; }
        c.Result();
    }

    /// XEP-0060 §6.5: all items, the newest max_items, or the items named by id (missing ids are left out).
    private async ValueTask ItemsAsync(IqContext c, Element request)
    {
        if (request.Attr("node") is not { Length: > 0 } name) { Fail(c, new PepError(StanzaErrors.BadRequest, "nodeid-required")); return; }
        int? max = null;
        if (request.Attr("max_items") is { } m)
        {
            if (!int.TryParse(m, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1)
            {
                c.Error(StanzaErrors.BadRequest, "max_items must be a positive integer");
                return;
            }
            max = n;
        }
        if (await pep.FindAsync(c.To.Bare, name) is not { } node) { Fail(c, PepService.NodeNotFound); return; }
        if (await pep.CheckReadAsync(c.To.Bare, node, c.From) is { } denied) { Fail(c, denied); return; }
        var live = node.Live(pep.Now).ToList();
        var wanted = request.Elements("item", Ns.PubSub).Select(i => i.Attr("id")).OfType<string>().ToHashSet(StringComparer.Ordinal);
        if (wanted.Count > 0) live = live.Where(i => wanted.Contains(i.Id)).ToList();
        if (max is { } limit && live.Count > limit) live = live.GetRange(live.Count - limit, limit);
        var items = new Element("items", Ns.PubSub).SetAttr("node", name);
        foreach (var item in live) items.Add(PepService.ItemElement(item, true, Ns.PubSub));
        c.Result(new Element("pubsub", Ns.PubSub).Add(items));
    }

    /// XEP-0060 §5.7: the requester's affiliations with this service's nodes (owner of all, or member of some).
    private async ValueTask MyAffiliationsAsync(IqContext c)
    {
        var list = new Element("affiliations", Ns.PubSub);
        var me = c.From.Bare.ToString();
        bool owner = c.From.Bare == c.To.Bare;
        foreach (var node in await pep.AllAsync(c.To.Bare))
        {
            if (owner || node.Members.Contains(me))
                list.Add(new Element("affiliation", Ns.PubSub).SetAttr("node", node.Name).SetAttr("affiliation", owner ? "owner" : "member"));
        }
        c.Result(new Element("pubsub", Ns.PubSub).Add(list));
    }
}
