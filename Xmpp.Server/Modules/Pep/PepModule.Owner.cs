// XEP-0060 §8: owner use cases (configure, default, delete, purge, affiliations) on the account's own nodes.
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Pep;

public sealed partial class PepModule
{
    private async ValueTask OwnerAsync(IqContext c)
    {
        if (!RequireOwner(c)) return;
        var action = c.Payload.Elements().FirstOrDefault(e => e.Namespace == Ns.PubSubOwner);
        switch (c.IsSet, action?.Name)
        {
            case (false, "configure"): await GetConfigurationAsync(c, action!); break;
            case (true, "configure"): await SetConfigurationAsync(c, action!); break;
            case (false, "default"):
                // §8.3: the default configuration a new node would get.
                c.Result(new Element("pubsub", Ns.PubSubOwner).Add(new Element("default", Ns.PubSubOwner)
                    .Add(pep.DefaultConfig(action!.Attr("node") ?? "").ToForm("form").Element)));
                break;
            case (true, "delete" or "purge"):
                if (NodeOf(c, action!) is not { } node) return;
                if (await pep.PurgeOrDeleteAsync(c.To.Bare, node, action!.Name == "delete") is { } error) { Fail(c, error); return; }
                c.Result();
                break;
            case (false, "affiliations"): await GetAffiliationsAsync(c, action!); break;
            case (true, "affiliations"): await SetAffiliationsAsync(c, action!); break;
            case (_, "subscriptions"):
                Fail(c, new PepError(StanzaErrors.FeatureNotImplemented, "unsupported", Feature: "manage-subscriptions"));
                break;
            default:
                c.Error(StanzaErrors.BadRequest, "no supported pubsub#owner action");
                break;
        }
    }

    private static string? NodeOf(IqContext c, Element action)
    {
        if (action.Attr("node") is { Length: > 0 } node) return node;
        Fail(c, new PepError(StanzaErrors.BadRequest, "nodeid-required"));
        return null;
    }

    /// §8.2.1: the node configuration as a form.
    private async ValueTask GetConfigurationAsync(IqContext c, Element configure)
    {
        if (NodeOf(c, configure) is not { } name) return;
        if (await pep.FindAsync(c.To.Bare, name) is not { } node) { Fail(c, PepService.NodeNotFound); return; }
        c.Result(new Element("pubsub", Ns.PubSubOwner).Add(new Element("configure", Ns.PubSubOwner).SetAttr("node", name)
            .Add(node.Config.ToForm("form").Element)));
    }

    /// §8.2.4: a submitted form changes the configuration; a cancel (§8.2.3) changes nothing.
    private async ValueTask SetConfigurationAsync(IqContext c, Element configure)
    {
        if (NodeOf(c, configure) is not { } name) return;
        DataForm? form = null;
        if (configure.Child("x", Ns.DataForms) is not { } x || !DataForm.TryParse(x, out form, out _) || form.Type is not ("submit" or "cancel"))
        {
            c.Error(StanzaErrors.BadRequest, "a submitted node configuration form is required");
            return;
        }
        if (form.Type == "cancel")
        {
            if (await pep.FindAsync(c.To.Bare, name) is null) Fail(c, PepService.NodeNotFound);
            else c.Result();
            return;
        }
        if (await pep.ConfigureAsync(c.To.Bare, name, form) is { } error) { Fail(c, error); return; }
        c.Result();
    }

    /// §8.9.1: the owner and the members of a node.
    private async ValueTask GetAffiliationsAsync(IqContext c, Element request)
    {
        if (NodeOf(c, request) is not { } name) return;
        if (await pep.FindAsync(c.To.Bare, name) is not { } node) { Fail(c, PepService.NodeNotFound); return; }
        var list = new Element("affiliations", Ns.PubSubOwner).SetAttr("node", name)
            .Add(new Element("affiliation", Ns.PubSubOwner).SetAttr("jid", c.To.Bare.ToString()).SetAttr("affiliation", "owner"));
        foreach (var m in node.Members)
            list.Add(new Element("affiliation", Ns.PubSubOwner).SetAttr("jid", m).SetAttr("affiliation", "member"));
        c.Result(new Element("pubsub", Ns.PubSubOwner).Add(list));
    }

    /// §8.9.2: "member" and "none" may be set for other entities (bare JIDs); the owner's own affiliation stays.
    private async ValueTask SetAffiliationsAsync(IqContext c, Element request)
    {
        if (NodeOf(c, request) is not { } name) return;
        var changes = new List<(string, bool)>();
        foreach (var a in request.Elements("affiliation", Ns.PubSubOwner))
        {
            if (!Jid.TryParse(a.Attr("jid"), out var jid) || jid.Bare == c.To.Bare || a.Attr("affiliation") is not ("member" or "none"))
            {
                // §8.9.2.4: an affiliation the service does not support, or the owner's own, cannot be set.
                c.Error(StanzaErrors.NotAcceptable, "only member and none can be set, for entities other than the owner");
                return;
            }
            changes.Add((jid.Bare.ToString(), a.Attr("affiliation") == "member"));
        }
        if (await pep.SetMembersAsync(c.To.Bare, name, changes) is { } error) { Fail(c, error); return; }
        c.Result();
    }
}
