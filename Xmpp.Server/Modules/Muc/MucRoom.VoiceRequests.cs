// XEP-0045 §7.13 requesting voice, §8.6 approving voice requests (the muc#request form).
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    private static bool IsVoiceRequestForm(Element stanza, out DataForm? form)
    {
        form = stanza.Child("x", Ns.DataForms) is { } x && DataForm.TryParse(x, out var f, out _) ? f : null;
        return form?.FormType == Ns.MucRequest;
    }

    /// A visitor's request goes to every moderator as a form to approve; a moderator's submitted form with
    /// muc#request_allow true gives the named occupant voice.
    private void VoiceRequest(StanzaContext c, MucOccupant? sender, DataForm form)
    {
        if (sender is null)
        {
            Error(c.Stanza, StanzaErrors.NotAcceptable, "Only occupants may request voice");
            return;
        }
        if (form.Has("muc#request_allow") || form.Has("muc#roomnick"))
        {
            ApproveVoice(c, sender, form);
            return;
        }
        if (form.Value("muc#role") != "participant" || sender.Role != MucRole.Visitor)
        {
            // §7.13: voice is what a visitor asks for; participants and moderators already have it.
            Error(c.Stanza, StanzaErrors.NotAcceptable, "Only visitors may request voice (muc#role participant)");
            return;
        }
        if (!sender.TakeMessageToken(service.Options.MessagesPerSecond, service.Options.MessageBurst))
        {
            Error(c.Stanza, StanzaErrors.ResourceConstraint, "You are sending too fast");
            return;
        }
        foreach (var moderator in _occupants.Where(o => o.Role == MucRole.Moderator))
            foreach (var s in moderator.Sessions)
                Send(new Element("message", Ns.Client).SetAttr("from", RoomText).SetAttr("to", s.ToString()).SetAttr("id", NewStanzaId())
                    .Add(VoiceRequestForm(sender)));
    }

    /// §8.6: the form a moderator fills in (title and instructions first, XEP-0004 §3.2); real JIDs are always
    /// visible to moderators.
    private static Element VoiceRequestForm(MucOccupant visitor) => new Element("x", Ns.DataForms).SetAttr("type", "form")
        .Add(new Element("title", Ns.DataForms).SetText("Voice request"))
        .Add(new Element("instructions", Ns.DataForms)
            .SetText("To give this person voice, check \"Grant voice\" and submit the form; to skip the request, cancel."))
        .Add(DataForm.Field("FORM_TYPE", "hidden", Ns.MucRequest))
        .Add(DataForm.Field("muc#role", "list-single", "participant").SetAttr("label", "Requested role"))
        .Add(DataForm.Field("muc#jid", "jid-single", visitor.Sessions.FirstOrDefault()?.ToString() ?? visitor.Bare.ToString()).SetAttr("label", "User ID"))
        .Add(DataForm.Field("muc#roomnick", "text-single", visitor.Nick).SetAttr("label", "Room nickname"))
        .Add(DataForm.Field("muc#request_allow", "boolean", "false").SetAttr("label", "Grant voice to this person?"));

    private void ApproveVoice(StanzaContext c, MucOccupant moderator, DataForm form)
    {
        if (moderator.Role != MucRole.Moderator)
        {
            Error(c.Stanza, StanzaErrors.Forbidden, "Only moderators decide voice requests");
            return;
        }
        if (form.Type != "submit" || form.Bool("muc#request_allow", out var valid) is not { } allow || !valid)
        {
            Error(c.Stanza, StanzaErrors.BadRequest, "Expected a submitted form with muc#request_allow");
            return;
        }
        if (!allow) return; // a denied request needs no answer
        var target = form.Value("muc#roomnick") is { } nick ? ByNick(nick)
            : Jid.TryParse(form.Value("muc#jid"), out var jid) ? BySession(jid) ?? ByBare(jid.Bare.ToString()).FirstOrDefault() : null;
        if (target is null)
        {
            Error(c.Stanza, StanzaErrors.ItemNotFound, "That visitor is no longer in the room");
            return;
        }
        if (target.Role != MucRole.Visitor) return; // already has voice (another moderator was quicker)
        // §8.3: granting voice is announced like any role change, naming the moderator.
        target.Role = MucRole.Participant;
        BroadcastPresence(target, null, item: i => AddReason(i, null, moderator));
    }
}
