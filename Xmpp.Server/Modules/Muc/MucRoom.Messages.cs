// XEP-0045 §7.4 groupchat messages, §7.5 private messages, §8.1 subject; XEP-0359 stanza-id, XEP-0421 occupant-id.
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    private async ValueTask HandleMessageAsync(StanzaContext c)
    {
        var stanza = c.Stanza;
        var sender = BySession(c.From);
        if (c.Type == "error")
        {
            HandleMessageError(c, sender);
            return;
        }
        if (c.To!.Resource is { } nick)
        {
            PrivateMessage(c, sender, nick);
            return;
        }
        if (c.Type == "groupchat")
        {
            await GroupchatAsync(c, sender);
            return;
        }
        if (IsVoiceRequestForm(stanza, out var form))
        {
            VoiceRequest(c, sender, form!);
            return;
        }
        if (stanza.Child("x", Ns.MucUser) is { } x && (x.Child("invite", Ns.MucUser) is not null || x.Child("decline", Ns.MucUser) is not null))
        {
            await InviteOrDeclineAsync(c, sender, x);
            return;
        }
        Error(stanza, StanzaErrors.BadRequest, "Messages to a room are groupchat, invitations, declines or voice requests");
    }

    /// A bounce of a groupchat message or presence we sent tells us an occupant is gone (XEP-0045 §18.1, code 333);
    /// a bounce of a private message goes back to its sender.
    private void HandleMessageError(StanzaContext c, MucOccupant? sender)
    {
        if (sender is null) return;
        if (c.To!.Resource is { } nick)
        {
            if (ByNick(nick) is not { } original) return;
            foreach (var s in original.Sessions)
                Send(c.Stanza.Clone().SetAttr("from", OccupantJid(sender).ToString()).SetAttr("to", s.ToString()));
            return;
        }
        RemoveSession(sender, c.From, [333], forced: true);
    }

    private async ValueTask GroupchatAsync(StanzaContext c, MucOccupant? sender)
    {
        var stanza = c.Stanza;
        if (sender is null)
        {
            // §7.4: only occupants may send to all occupants.
            Error(stanza, StanzaErrors.NotAcceptable, "Only occupants may send messages to the room");
            return;
        }
        if (sender.Role < MucRole.Participant)
        {
            // §7.4, §8.4: visitors in a moderated room have no voice.
            Error(stanza, StanzaErrors.Forbidden, "You have no voice in this room");
            return;
        }
        var subject = stanza.Child("subject", Ns.Client);
        bool subjectChange = subject is not null && stanza.Child("body", Ns.Client) is null;
        if (subjectChange && sender.Role != MucRole.Moderator && !Config.ChangeSubject)
        {
            // §8.1: only moderators change the subject unless the room lets participants.
            Error(stanza, StanzaErrors.Forbidden, "You may not change the subject");
            return;
        }
        if (!sender.TakeMessageToken(service.Options.MessagesPerSecond, service.Options.MessageBurst))
        {
            Error(stanza, StanzaErrors.ResourceConstraint, "You are sending too fast");
            return;
        }
        var message = Reflect(stanza, sender);
        var stanzaId = NewStanzaId();
        message.Add(new Element("stanza-id", Ns.StanzaId).SetAttr("id", stanzaId).SetAttr("by", RoomText));
        SendToOccupants(message);
        if (subjectChange)
        {
            Subject = subject!.Text;
            SubjectNick = sender.Nick;
            await SaveAsync();
            return;
        }
        if (stanza.Child("body", Ns.Client) is null) return;
        NotifyAbsentMembers(message, sender);
        await RecordAsync(message, sender, stanzaId);
    }

    /// The message as occupants receive it: from the sender's occupant JID, without ids others could forge
    /// (XEP-0359 §3.1, XEP-0421 §4), with the room's occupant-id.
    private Element Reflect(Element stanza, MucOccupant sender)
    {
        var message = stanza.Clone().SetAttr("from", OccupantJid(sender).ToString()).SetAttr("to", null);
        foreach (var id in message.Elements("stanza-id", Ns.StanzaId).Where(e => e.Attr("by") == RoomText).ToList()) message.Remove(id);
        message.RemoveAll("occupant-id", Ns.OccupantId);
        // Only the room says who someone is (a forged muc#user item could claim a real JID in archives).
        message.RemoveAll("x", Ns.MucUser);
        message.Add(new Element("occupant-id", Ns.OccupantId).SetAttr("id", sender.OccupantId));
        return message;
    }

    private static string NewStanzaId() => Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12))
        .Replace('+', '-').Replace('/', '_');

    /// §7.5: private messages go between occupants, from the sender's occupant JID, marked with an empty muc#user x.
    private void PrivateMessage(StanzaContext c, MucOccupant? sender, string nick)
    {
        var stanza = c.Stanza;
        if (c.Type == "groupchat")
        {
            Error(stanza, StanzaErrors.BadRequest, "A groupchat message goes to the room, not to an occupant");
            return;
        }
        if (sender is null)
        {
            Error(stanza, StanzaErrors.NotAcceptable, "Only occupants may send private messages");
            return;
        }
        bool allowed = Config.AllowPm switch
        {
            "anyone" => true,
            "participants" => sender.Role >= MucRole.Participant,
            "moderators" => sender.Role == MucRole.Moderator,
            _ => false,
        };
        if (!allowed)
        {
            Error(stanza, StanzaErrors.Forbidden, "Private messages are not allowed in this room");
            return;
        }
        if (ByNick(nick) is not { } target)
        {
            Error(stanza, StanzaErrors.ItemNotFound, "No occupant has that nickname");
            return;
        }
        if (!sender.TakeMessageToken(service.Options.MessagesPerSecond, service.Options.MessageBurst))
        {
            Error(stanza, StanzaErrors.ResourceConstraint, "You are sending too fast");
            return;
        }
        var message = Reflect(stanza, sender);
        if (message.Child("x", Ns.MucUser) is null) message.Add(new Element("x", Ns.MucUser));
        foreach (var s in target.Sessions) Send(message.Clone().SetAttr("to", s.ToString()));
    }

    /// §7.2.15: the subject is the last thing a joining occupant receives, empty when none is set.
    private void SendSubject(Jid to)
    {
        var from = SubjectNick is { } n ? Jid.WithResource(n).ToString() : RoomText;
        Send(new Element("message", Ns.Client).SetAttr("type", "groupchat").SetAttr("from", from).SetAttr("to", to.ToString())
            .Add(new Element("subject", Ns.Client).SetText(Subject ?? "")));
    }
}
