using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Hosting;
using Xmpp.Server.Links;
using Xmpp.Server.Modules;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Routing;

/// Applies RFC 6120 §10 and RFC 6121 §8 to every stanza: classify the target, dispatch IQs to module handlers,
/// choose resources for messages and presence, run the hooks, and answer what cannot be delivered.
public sealed class Router(
    ISessionDirectory directory,
    ModuleTable moduleTable,
    AccountService accounts,
    ServedDomains domains,
    IRemoteLinks remote,
    Limits.BlockList blockList,
    ILogger<Router> logger,
    Metrics.ServerMetrics? metrics = null,
    Cluster.INodeBus? nodeBus = null) : IRouter
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource<Element?>> _pending = new(StringComparer.Ordinal);
    private ModuleRegistry? _modules;

    // Modules depend on the router to send stanzas: the registry reaches it through the table once it is built.
    private ModuleRegistry modules => _modules ??= moduleTable.Registry;
    private long _requestSeq;

    public async ValueTask RouteAsync(Element stanza, ClientSession? origin)
    {
        var fromAttr = stanza.Attr("from");
        // The stream stamped its session's own address (the very string instance): no need to parse it again.
        Jid? from = origin is not null && ReferenceEquals(fromAttr, origin.Jid.ToString()) ? origin.Jid : null;
        if (from is null && (fromAttr is null || !JidCache.TryParse(fromAttr, out from)))
        {
            logger.LogWarning("Dropped a stanza without a valid from: {Stanza}", stanza.Name);
            return;
        }
        Jid? to = null;
        var toAttr = stanza.Attr("to");
        if (toAttr is not null && !JidCache.TryParse(toAttr, out to))
        {
            await BounceAsync(stanza, StanzaErrors.JidMalformed);
            return;
        }

        if (!blockList.IsEmpty && (blockList.IsBlocked(from) || to is not null && blockList.IsBlocked(to)))
        {
            // The server-wide block list (Xmpp:Blocked): refused before any module or link sees the stanza. A local
            // client is told on its own stream (routing the error would meet the list again); a blocked domain has no
            // link to send anything back on, and the server's own stanzas to a blocked address are simply not sent.
            metrics?.Refuse("blocked");
            if (origin is not null && stanza.Attr("type") != "error")
            {
                var reply = StanzaErrors.Reply(stanza, StanzaErrors.NotAllowed, "Blocked by this server's policy");
                reply.SetAttr("from", toAttr ?? domains.Default);
                origin.Send(reply);
            }
            else logger.LogDebug("Refused a {Stanza} from {From} to {To}: on the block list", stanza.Name, fromAttr, toAttr);
            return;
        }
        var context = new StanzaContext(stanza, from, to, origin);
        if (origin is not null && await RunHooks(HookPoint.Inbound, context)) return;
        if (to is not null && modules.FindService(to.Domain) is { } service)
        {
            await RouteToServiceAsync(context, service);
            return;
        }

        switch (context.Stanza.Name)
        {
            case "iq": await RouteIq(context); break;
            case "message": await RouteMessage(context); break;
            case "presence": await RoutePresence(context); break;
        }
    }

    public async ValueTask RouteFromLinkAsync(Element stanza)
    {
        if (!Jid.TryParse(stanza.Attr("from"), out var from) || !Jid.TryParse(stanza.Attr("to"), out var to)) return;
        var context = new StanzaContext(stanza, from!, to, null);
        if (await RunHooks(HookPoint.FromRemote, context)) return;
        await RouteAsync(context.Stanza, null);
    }

    private async ValueTask<bool> RunHooks(HookPoint point, StanzaContext context)
    {
        foreach (var hook in modules.Hooks(point))
            if (await hook(context)) return true;
        return false;
    }

    // ---- Hosted services (IModuleBuilder.Service): MUC, upload, proxy, components ----

    /// Everything addressed to a service domain or a JID at it goes to that service, never to local delivery. A client's
    /// presence first passes the outbound presence hooks, so directed presence is remembered and its end announced
    /// there (RFC 6121 §4.6.3). JIDs with a local part go to the service's entity handler when it has one (MUC rooms and
    /// occupants), and so does everything for a whole-domain service (an XEP-0114 component's link); IQ requests to
    /// everything else go to its ServiceIq handlers.
    private async ValueTask RouteToServiceAsync(StanzaContext c, HostedService service)
    {
        if (c.Name == "presence" && c.Origin is not null && await RunHooks(HookPoint.OutboundPresence, c)) return;
        var to = c.To!;
        if ((to.Local is not null || service.WholeDomain) && service.Entities is { } entities)
        {
            try { await entities(c); }
            catch (Xmpp.Storage.StorageFullException)
            {
                if (c.Type is not ("error" or "result"))
                    await BounceAsync(c.Stanza, StanzaErrors.ResourceConstraint, "The server's storage is full; try again later");
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Service {Domain} failed on a {Name}", to.Domain, c.Name);
                if (c.Type is not ("error" or "result")) await BounceAsync(c.Stanza, StanzaErrors.InternalServerError);
            }
            return;
        }
        switch (c.Name)
        {
            case "iq":
                if (c.Type is "get" or "set") await DispatchIq(c, to, IqTarget.Server, service: to.Domain);
                else if (c.Type is "result" or "error") CompleteRequest(c.Stanza);
                else await BounceAsync(c.Stanza, StanzaErrors.BadRequest, "iq type must be get, set, result or error");
                return;
            case "message":
                // Nothing at the service consumes messages (RFC 6121 §8.5.1 applied to a service without entities).
                if (c.Type is not ("error" or "headline")) await BounceAsync(c.Stanza, StanzaErrors.ServiceUnavailable);
                return;
        }
        // Presence to the service itself means nothing (RFC 6121 §4.6); it is ignored.
    }

    // ---- IQ (RFC 6120 §8.2.3, §10.3) ----

    private async ValueTask RouteIq(StanzaContext c)
    {
        var stanza = c.Stanza;
        var type = c.Type;
        bool request = type is "get" or "set";
        if (!request && type is not ("result" or "error"))
        {
            await BounceAsync(stanza, StanzaErrors.BadRequest, "iq type must be get, set, result or error");
            return;
        }
        var to = c.To;
        if (to is null || (to.IsBare && c.Origin is not null && to == c.From.Bare))
        {
            // RFC 6120 §10.3.3: no 'to' means the server answers on behalf of the sender's account.
            if (request) await DispatchIq(c, c.From.Bare, IqTarget.Self);
            return;
        }
        if (!domains.Contains(to.Domain))
        {
            // Requests and answers alike: an answer to a remote entity's request travels back the same way.
            await remote.SendAsync(stanza, c.From, to);
            return;
        }
        if (to.IsDomain)
        {
            if (request) await DispatchIq(c, to, IqTarget.Server);
            else CompleteRequest(stanza);
            return;
        }
        if (to.Resource is null)
        {
            // A response to a bare JID answers a request the server sent on the account's behalf (a XEP-0357
            // publish), or nothing at all (RFC 6121 §8.5.2.1.3).
            if (!request) { CompleteRequest(stanza); return; }
            if (!await accounts.ExistsAsync(to.Local!))
            {
                await BounceAsync(stanza, StanzaErrors.ServiceUnavailable);
                return;
            }
            await DispatchIq(c, to, IqTarget.Account);
            return;
        }
        // As for messages: a resource another node bound a moment ago is looked up in the shared directory.
        var target = directory.Find(to) ?? (await directory.GetConfirmedAsync(to.Bare)).Find(to.Resource);
        if (target is not null)
        {
            if (!await DeliverAsync(target, stanza, c.From) && request)
                await BounceAsync(stanza, StanzaErrors.ServiceUnavailable);
            return;
        }
        // RFC 6121 §8.5.3.2.3: an IQ to a full JID with no such resource gets service-unavailable.
        if (request) await BounceAsync(stanza, StanzaErrors.ServiceUnavailable);
    }

    private async ValueTask DispatchIq(StanzaContext c, Jid to, IqTarget target, string? service = null)
    {
        var stanza = c.Stanza;
        Element? payload = null;
        int count = 0;
        foreach (var child in stanza.Elements())
        {
            if (child.Name == "error") continue;
            payload ??= child;
            count++;
        }
        if (count != 1)
        {
            // RFC 6120 §8.2.3: a get or set contains exactly one payload element.
            await BounceAsync(stanza, StanzaErrors.BadRequest, "an iq get or set carries exactly one child element");
            return;
        }
        var handler = service is not null
            ? modules.FindServiceIq(service, payload!.Namespace, payload.Name)
            : modules.FindIq(target, payload!.Namespace, payload.Name);
        if (handler is null && target == IqTarget.Self) handler = modules.FindIq(IqTarget.Account, payload.Namespace, payload.Name);
        var origin = c.Origin;
        var context = new IqContext(stanza, c.From, to, payload, origin, reply =>
        {
            // Replies to the requesting session go straight back to it; anything else is routed.
            if (origin is not null && origin.Jid == c.From) origin.Send(reply);
            else _ = RouteAsync(reply, null).AsTask();
        });
        if (handler is null)
        {
            context.Error(StanzaErrors.ServiceUnavailable);
            return;
        }
        try
        {
            await handler(context);
            if (!context.Answered)
            {
                logger.LogError("IQ handler for {{{Ns}}}{Name} returned no answer", payload.Namespace, payload.Name);
                context.Error(StanzaErrors.InternalServerError);
            }
        }
        catch (Xmpp.Storage.StorageFullException)
        {
            // RFC 6120 §8.3.3.18: resource-constraint, type wait: the disk is full and the write was not tried; the
            // client may try again later. The outage itself is logged once by the storage (StorageStall).
            if (!context.Answered) context.Error(StanzaErrors.ResourceConstraint, "The server's storage is full; try again later");
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "IQ handler for {{{Ns}}}{Name} failed", payload.Namespace, payload.Name);
            context.Error(StanzaErrors.InternalServerError);
        }
    }

    public Task<Element?> RequestAsync(Element iq, TimeSpan timeout)
    {
        var id = "s2c-" + Interlocked.Increment(ref _requestSeq).ToString(System.Globalization.CultureInfo.InvariantCulture);
        // In a cluster the answer reaches the node holding the session that was asked, which may be another one: the id
        // names this node, so that node hands the answer back (CompleteRequest).
        if (nodeBus is not null) id += "." + nodeBus.LocalNode;
        iq.SetAttr("id", id);
        var tcs = new TaskCompletionSource<Element?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = tcs;
        var cts = new CancellationTokenSource(timeout);
        cts.Token.Register(() =>
        {
            if (_pending.TryRemove(id, out var t)) t.TrySetResult(null);
            cts.Dispose();
        });
        _ = RouteAsync(iq, null).AsTask();
        return tcs.Task;
    }

    private void CompleteRequest(Element response)
    {
        var id = response.Attr("id");
        if (id is null) return;
        if (_pending.TryRemove(id, out var tcs))
        {
            tcs.TrySetResult(response);
            return;
        }
        // The answer to another node's request (RequestAsync there): it goes back to that node's router, once; an
        // answer naming this node that matches nothing (timed out) ends here.
        if (nodeBus is not null && id.StartsWith("s2c-", StringComparison.Ordinal) && id.IndexOf('.') is > 4 and var dot
            && id[(dot + 1)..] is { Length: > 0 } node && node != nodeBus.LocalNode)
            nodeBus.Route(node, response);
    }

    // ---- Messages (RFC 6121 §8.5) ----

    private async ValueTask RouteMessage(StanzaContext c)
    {
        var stanza = c.Stanza;
        var type = c.Type ?? "normal";
        if (type is not ("normal" or "chat" or "groupchat" or "headline" or "error"))
        {
            await BounceAsync(stanza, StanzaErrors.BadRequest, "unknown message type");
            return;
        }
        var to = c.To ?? c.From.Bare; // RFC 6120 §10.3.1: no 'to' means the sender's own bare JID
        if (!domains.Contains(to.Domain))
        {
            await remote.SendAsync(stanza, c.From, to);
            return;
        }
        if (to.Local is null)
        {
            // Messages to the server itself: nothing here consumes them.
            if (type is not ("error" or "headline")) await BounceAsync(stanza, StanzaErrors.ServiceUnavailable);
            return;
        }
        if (!await accounts.ExistsAsync(to.Local))
        {
            // RFC 6121 §8.5.1: no such user.
            await BounceAsync(stanza, StanzaErrors.ServiceUnavailable);
            return;
        }
        if (await RunHooks(HookPoint.InboundMessage, c))
        {
            metrics?.Route("stored");
            return;
        }
        if (to.Resource is not null)
        {
            var target = directory.Find(to);
            if (target is not null && await DeliverAsync(target, stanza, c.From))
            {
                metrics?.Route("delivered");
                return;
            }
            // RFC 6121 §8.5.3.2.1: no such resource.
            switch (type)
            {
                case "error" or "headline": return;
                case "groupchat": await BounceAsync(stanza, StanzaErrors.ServiceUnavailable); return;
            }
            // normal and chat are treated as if sent to the bare JID.
        }
        await RouteMessageToBare(c, to.Bare, type);
    }

    private async ValueTask RouteMessageToBare(StanzaContext c, Jid bare, string type)
    {
        var stanza = c.Stanza;
        var set = directory.Get(bare);
        switch (type)
        {
            case "error":
                return; // RFC 6121 §8.5.2.1.1: silently ignored
            case "groupchat":
                await BounceAsync(stanza, StanzaErrors.ServiceUnavailable);
                return;
            case "headline":
                // RFC 6121 §8.5.2.1.1: headlines go to all available resources with non-negative priority.
                await DeliverSharedAsync(set.Entries.Where(e => e.ReceivesBareMessages).ToList(), stanza, c.From);
                return;
        }
        // RFC 6121 §8.5.2.1.1: normal and chat go to the most available resource(s). Before treating the account as
        // offline, a cluster node checks the shared directory: a resource another node bound a moment ago may not have
        // reached this node's copy yet (docs/cluster-seams.md, the replication window).
        var targets = set.MostAvailable();
        if (targets.Count == 0) targets = (await directory.GetConfirmedAsync(bare)).MostAvailable();
        if (await DeliverSharedAsync(targets, stanza, c.From))
        {
            metrics?.Route("delivered");
            return;
        }
        var undeliverable = new StanzaContext(stanza, c.From, bare, c.Origin);
        if (await RunHooks(HookPoint.Undeliverable, undeliverable))
        {
            metrics?.Route("stored");
            return;
        }
        // RFC 6121 §8.5.2.2.1: no offline storage took it.
        await BounceAsync(stanza, StanzaErrors.ServiceUnavailable);
    }

    public async ValueTask UndeliveredAsync(Element stanza)
    {
        if (!Jid.TryParse(stanza.Attr("from"), out var from) || !Jid.TryParse(stanza.Attr("to"), out var to)) return;
        var type = stanza.Attr("type");
        switch (stanza.Name)
        {
            case "message":
                // RFC 6121 §8.5.3.2.1, as when the resource is gone here: normal and chat go on as if sent to the bare
                // JID (another resource, the offline spool, or the error); the others end here.
                type ??= "normal";
                if (type is "error" or "headline") return;
                if (type == "groupchat") { await BounceAsync(stanza, StanzaErrors.ServiceUnavailable); return; }
                await RouteMessageToBare(new StanzaContext(stanza, from!, to, null), to!.Bare, type);
                return;
            case "iq" when type is "get" or "set":
                await BounceAsync(stanza, StanzaErrors.ServiceUnavailable); // RFC 6121 §8.5.3.2.3
                return;
        }
        // Presence for a resource that is gone means nothing now (RFC 6121 §8.5.3.2.2).
    }

    public ValueTask<bool> DeliverToBareAsync(Jid bare, Element stanza) => DeliverSharedAsync(directory.Get(bare).MostAvailable(), stanza, null);

    /// Hands a message to each target, copies linked in one SharedDelivery when there are several. False when it
    /// must be treated as undeliverable: no target took it, or every one that did has already given it back.
    private async ValueTask<bool> DeliverSharedAsync(IReadOnlyList<SessionEntry> targets, Element stanza, Jid? from)
    {
        if (targets.Count == 0) return false;
        if (targets.Count == 1) return await DeliverAsync(targets[0], stanza, from);
        var group = new SharedDelivery(targets.Count);
        bool routeOn = false;
        for (int i = 0; i < targets.Count; i++)
        {
            // Cloned only after the first delivery: what its hooks added (the archive's stanza-id) is on every copy.
            var copy = i == 0 ? stanza : stanza.Clone();
            group.Attach(copy);
            if (!await DeliverAsync(targets[i], copy, from) && group.Release()) routeOn = true;
        }
        return !routeOn;
    }

    // ---- Presence (RFC 6121 §4, §8.5) ----

    private async ValueTask RoutePresence(StanzaContext c)
    {
        var type = c.Type;
        if (type is not (null or "unavailable" or "subscribe" or "subscribed" or "unsubscribe" or "unsubscribed" or "probe" or "error"))
        {
            await BounceAsync(c.Stanza, StanzaErrors.BadRequest, "unknown presence type");
            return;
        }
        if (c.Origin is not null)
        {
            if (await RunHooks(HookPoint.OutboundPresence, c)) return;
            if (c.To is null) return;
        }
        var to = c.To;
        if (to is null) return;
        if (!domains.Contains(to.Domain))
        {
            // Presence for a contact at another server (broadcast, directed, probes, subscriptions) goes out over its link.
            await remote.SendAsync(c.Stanza, c.From, to);
            return;
        }
        if (to.Local is null) return; // RFC 6121 §4.6, §8.5.1: ignored
        if (!await accounts.ExistsAsync(to.Local)) return;
        if (await RunHooks(HookPoint.InboundPresence, c)) return;
        if (to.Resource is not null)
        {
            if (directory.Find(to) is { } target) await DeliverAsync(target, c.Stanza, c.From);
            return;
        }
        foreach (var e in directory.Get(to).Available())
            await DeliverAsync(e, c.Stanza.Clone(), c.From);
    }

    // ---- Delivery and errors ----

    public ValueTask<bool> DeliverAsync(SessionEntry target, Element stanza) => DeliverAsync(target, stanza, null);

    /// from: the stanza's sender when the caller has it parsed already (the router's own deliveries), else null.
    private async ValueTask<bool> DeliverAsync(SessionEntry target, Element stanza, Jid? from)
    {
        var (taken, delivered) = await RunDeliverHooks(HookPoint.Deliver, target, stanza, from);
        if (taken) return true;
        // A session on another node: its node runs the DeliverToSession hooks when the stanza gets there (ClusterLinks).
        if (target.Sink is not ISession) return target.Sink.Send(delivered);
        return await DeliverToSessionAsync(target, delivered, from);
    }

    public ValueTask<bool> DeliverToSessionAsync(SessionEntry target, Element stanza) => DeliverToSessionAsync(target, stanza, null);

    private async ValueTask<bool> DeliverToSessionAsync(SessionEntry target, Element stanza, Jid? from)
    {
        var (taken, delivered) = await RunDeliverHooks(HookPoint.DeliverToSession, target, stanza, from);
        return taken || target.Sink.Send(delivered);
    }

    /// True when a hook took the stanza; else the stanza to send on (a hook may have replaced it). The context is
    /// rented per thread and returned here: a hook may keep the stanza, never the context.
    private async ValueTask<(bool Taken, Element Stanza)> RunDeliverHooks(HookPoint point, SessionEntry target, Element stanza, Jid? from)
    {
        var hooks = modules.Hooks(point);
        if (hooks.Length == 0) return (false, stanza);
        from ??= JidCache.TryParse(stanza.Attr("from"), out var f) ? f : Jid.Parse(domains.Default);
        var context = StanzaContext.RentForDelivery(stanza, from, target);
        foreach (var hook in hooks)
        {
            if (!await hook(context)) continue;
            context.ReturnDelivery();
            return (true, stanza);
        }
        if (!ReferenceEquals(stanza, context.Stanza)) SharedDelivery.Carry(stanza, context.Stanza);
        var delivered = context.Stanza;
        context.ReturnDelivery();
        return (false, delivered);
    }

    public ValueTask BounceAsync(Element stanza, string condition, string? text = null, string? type = null)
    {
        if (stanza.Attr("type") == "error") return ValueTask.CompletedTask; // RFC 6120 §8.3.1: never answer an error
        if (stanza.Name == "message") metrics?.Route("bounced");
        var reply = StanzaErrors.Reply(stanza, condition, text, type);
        var originalTo = stanza.Attr("to");
        // The error comes from the entity addressed, or from the server when the address itself was the problem.
        reply.SetAttr("from", originalTo is not null && condition != StanzaErrors.JidMalformed ? originalTo : domains.Default);
        if (reply.Attr("to") is null) return ValueTask.CompletedTask;
        return RouteAsync(reply, null);
    }
}
