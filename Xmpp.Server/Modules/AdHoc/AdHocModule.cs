// XEP-0050: Ad-Hoc Commands, the server's side: list, describe and run the commands other modules declare.
using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.AdHoc;

/// Commands are listed at the node 'http://jabber.org/protocol/commands' of a served domain (XEP-0050 §2.2), each
/// visible only to those allowed to run it (admins are the bare JIDs in Xmpp:Admins and the accounts in AdminSet). Every command has at most one
/// form, so an execution is: execute → form (status executing, one session id) → complete with the submitted form →
/// result (status completed, with a note), or cancel. Sessions live ten minutes and are tied to the full JID that
/// started them (§4.4: the session id alone is no credential).
[Xep("XEP-0050", "1.3.0", "single-stage commands")]
public sealed class AdHocModule(AdHocCommands commands, AdminSet admins, TimeProvider time, ILogger<AdHocModule> logger)
    : IXmppModule
{
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromMinutes(10);
    public const int MaxSessionsPerRequester = 16;

    private sealed record Pending(string Requester, AdHocCommand Command, DateTimeOffset Expires);

    private readonly ConcurrentDictionary<string, Pending> _sessions = new(StringComparer.Ordinal);

    public void Register(IModuleBuilder module)
    {
        module.ServerFeature(Ns.Commands);
        module.Iq(IqTarget.Server, "command", Ns.Commands, ExecuteAsync);
        module.ServerNode(DescribeNode);
        module.OnAccountDeleted(admins.AccountDeletedAsync);
    }

    /// Bare JIDs named in Xmpp:Admins, compared in their normalized form, and accounts an invitation made admins.
    public bool IsAdmin(Jid who) => admins.IsAdmin(who);

    private bool Allowed(AdHocCommand command, Jid who, string domain) => command.Access switch
    {
        // Only the domain's own users: a command of the server is no service to other servers' users.
        CommandAccess.LocalUsers => who.Local is not null && who.Domain == domain,
        CommandAccess.Admins => IsAdmin(who),
        _ => false,
    };

    private DiscoNode? DescribeNode(Jid asker, string domain, string node)
    {
        if (node == Ns.Commands)
        {
            // XEP-0050 §2.2: the commands this asker may run.
            var items = commands.All.Where(c => Allowed(c, asker, domain))
                .Select(c => new Element("item", Ns.DiscoItems).SetAttr("jid", domain).SetAttr("node", c.Node).SetAttr("name", c.Name))
                .ToList();
            return new DiscoNode([], [], items);
        }
        if (commands.Find(node) is { } command && Allowed(command, asker, domain))
        {
            // §2.3: a command node is an automation/command-node identity with the commands and data forms features.
            return new DiscoNode([("automation", "command-node", command.Name)], [Ns.Commands, Ns.DataForms], []);
        }
        return null;
    }

    private async ValueTask ExecuteAsync(IqContext c)
    {
        if (!c.IsSet) { c.Error(StanzaErrors.BadRequest); return; }
        var node = c.Payload.Attr("node");
        var action = c.Payload.Attr("action") ?? "execute";
        var sessionId = c.Payload.Attr("sessionid");
        if (string.IsNullOrEmpty(node)) { c.Error(StanzaErrors.BadRequest, "The command's node is missing"); return; }
        var command = commands.Find(node);
        if (command is null) { c.Error(StanzaErrors.ItemNotFound); return; }
        if (!Allowed(command, c.From, c.To.Domain))
        {
            logger.LogInformation("{Jid} may not run the command {Node}", c.From, node);
            c.Error(StanzaErrors.Forbidden);
            return;
        }
        if (action is not ("execute" or "complete" or "cancel" or "next" or "prev"))
        {
            c.Error(StanzaErrors.BadRequest, CommandError("malformed-action"));
            return;
        }
        var request = new AdHocRequest(c.From, c.To.Domain);

        if (sessionId is null)
        {
            if (action is not ("execute" or "complete")) { c.Error(StanzaErrors.BadRequest, CommandError("bad-action")); return; }
            if (command.Form is null)
            {
                await RunAsync(c, command, request, null, NewSessionId());
                return;
            }
            if (!StartSession(c.From.ToString(), command, out var id))
            {
                c.Error(StanzaErrors.ResourceConstraint, $"At most {MaxSessionsPerRequester} commands may run at once");
                return;
            }
            var form = await command.Form(request);
            c.Result(Reply(node, id, "executing")
                .Add(new Element("actions", Ns.Commands).SetAttr("execute", "complete").Add(new Element("complete", Ns.Commands)))
                .Add(form.Element));
            return;
        }

        // XEP-0050 §4.6: a session id this requester did not get, or that ran out, is bad-sessionid / session-expired.
        if (!_sessions.TryGetValue(sessionId, out var pending) || pending.Requester != c.From.ToString() || pending.Command != command)
        {
            c.Error(StanzaErrors.BadRequest, CommandError("bad-sessionid"));
            return;
        }
        if (pending.Expires <= time.GetUtcNow())
        {
            _sessions.TryRemove(sessionId, out _);
            c.Error(StanzaErrors.NotAllowed, CommandError("session-expired"));
            return;
        }
        switch (action)
        {
            case "cancel":
                _sessions.TryRemove(sessionId, out _);
                c.Result(Reply(node, sessionId, "canceled"));
                return;
            case "next" or "prev":
                // One stage only: there is no next or previous one (§4.6 bad-action).
                c.Error(StanzaErrors.BadRequest, CommandError("bad-action"));
                return;
        }
        if (c.Payload.Child("x", Ns.DataForms) is not { } x || !DataForm.TryParse(x, out var submitted, out _) || submitted.Type != "submit")
        {
            c.Error(StanzaErrors.BadRequest, CommandError("bad-payload"));
            return;
        }
        _sessions.TryRemove(sessionId, out _);
        await RunAsync(c, command, request, submitted, sessionId);
    }

    private async ValueTask RunAsync(IqContext c, AdHocCommand command, AdHocRequest request, DataForm? form, string sessionId)
    {
        var result = await command.Run(request, form);
        logger.LogInformation("{Jid} ran {Node}: {Note}", request.From, command.Node, result.Note);
        var reply = Reply(command.Node, sessionId, "completed");
        if (result.Note is not null)
            reply.Add(new Element("note", Ns.Commands).SetAttr("type", result.NoteType).SetText(result.Note));
        if (result.Form is not null) reply.Add(result.Form.Element);
        c.Result(reply);
    }

    private bool StartSession(string requester, AdHocCommand command, out string id)
    {
        var now = time.GetUtcNow();
        foreach (var (key, p) in _sessions)
            if (p.Expires <= now) _sessions.TryRemove(key, out _);
        id = "";
        if (_sessions.Values.Count(p => p.Requester == requester) >= MaxSessionsPerRequester) return false;
        id = NewSessionId();
        _sessions[id] = new Pending(requester, command, now + SessionLifetime);
        return true;
    }

    private static string NewSessionId() => Convert.ToHexString(RandomNumberGenerator.GetBytes(12)).ToLowerInvariant();

    private static Element Reply(string node, string sessionId, string status) =>
        new Element("command", Ns.Commands).SetAttr("node", node).SetAttr("sessionid", sessionId).SetAttr("status", status);

    private static Element CommandError(string condition) => new(condition, Ns.Commands);
}
