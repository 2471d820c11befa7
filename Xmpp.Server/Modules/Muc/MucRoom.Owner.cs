// XEP-0045 §10: owner use cases (creating and configuring a room, destroying it).
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    private static readonly string[] MaxUsersOptions = ["10", "20", "30", "50", "100", "200", "500", "none"];

    private async ValueTask OwnerAsync(StanzaContext c, Element query)
    {
        if (!Exists)
        {
            Error(c.Stanza, StanzaErrors.ItemNotFound);
            return;
        }
        if (AffiliationOf(c.From) != MucAffiliation.Owner)
        {
            // §10.1.2, §10.2: only owners configure or destroy the room.
            Error(c.Stanza, StanzaErrors.Forbidden, "Only owners may do that");
            return;
        }
        if (c.Type == "get")
        {
            if (query.FirstElement is not null) { Error(c.Stanza, StanzaErrors.BadRequest); return; }
            Result(c, new Element("query", Ns.MucOwner).Add(ConfigForm().Element));
            return;
        }
        if (query.Child("destroy", Ns.MucOwner) is { } destroy)
        {
            Result(c);
            await DestroyAsync(destroy.Attr("jid"), destroy.ChildText("reason", Ns.MucOwner), destroy.ChildText("password", Ns.MucOwner));
            return;
        }
        if (query.Child("x", Ns.DataForms) is not { } x) { Error(c.Stanza, StanzaErrors.BadRequest, "Expected a data form or destroy"); return; }
        if (!DataForm.TryParse(x, out var form, out var malformed)) { Error(c.Stanza, StanzaErrors.BadRequest, malformed); return; }
        if (form.Type == "cancel")
        {
            Result(c);
            // §10.1.3: cancelling the initial configuration of a locked room destroys it.
            if (Locked) await DestroyAsync(null, null, null);
            return;
        }
        if (form.Type != "submit" || (form.FormType is { } ft && ft != Ns.MucRoomConfig))
        {
            Error(c.Stanza, StanzaErrors.BadRequest, "Expected a muc#roomconfig submission");
            return;
        }
        var next = Config.Clone();
        if (ApplyForm(form, next) is { } problem)
        {
            Error(c.Stanza, StanzaErrors.NotAcceptable, problem);
            return;
        }
        Result(c);
        await ApplyConfigAsync(next);
    }

    private DataForm ConfigForm()
    {
        var f = new DataForm("form", Ns.MucRoomConfig);
        f.AddField("muc#roomconfig_roomname", "text-single", "Name", [Config.Title]);
        f.AddField("muc#roomconfig_roomdesc", "text-single", "Description", [Config.Description]);
        f.AddBool("muc#roomconfig_persistentroom", "Keep the room when it is empty", Config.Persistent);
        f.AddBool("muc#roomconfig_publicroom", "List the room publicly", Config.Public);
        f.AddBool("muc#roomconfig_membersonly", "Only members may enter", Config.MembersOnly);
        f.AddBool("muc#roomconfig_moderatedroom", "Only participants with voice may speak", Config.Moderated);
        f.AddBool("muc#roomconfig_passwordprotectedroom", "A password is required to enter", Config.PasswordProtected);
        f.AddField("muc#roomconfig_roomsecret", "text-private", "Password", [Config.Password]);
        f.AddField("muc#roomconfig_whois", "list-single", "Who may see real JIDs", [Config.NonAnonymous ? "anyone" : "moderators"],
            [("Moderators only", "moderators"), ("Anyone", "anyone")]);
        f.AddField("muc#roomconfig_maxusers", "list-single", "Maximum occupants",
            [Config.MaxUsers > 0 ? Config.MaxUsers.ToString(CultureInfo.InvariantCulture) : "none"],
            MaxUsersOptions.Select(o => (o, o)));
        f.AddField("muc#maxhistoryfetch", "text-single", "Messages of history sent on entering", [HistoryCapacity.ToString(CultureInfo.InvariantCulture)]);
        f.AddField("muc#roomconfig_allowpm", "list-single", "Who may send private messages", [Config.AllowPm],
            [("Anyone", "anyone"), ("Participants", "participants"), ("Moderators", "moderators"), ("Nobody", "none")]);
        f.AddBool("muc#roomconfig_changesubject", "Occupants may change the subject", Config.ChangeSubject);
        f.AddBool("muc#roomconfig_allowinvites", "Occupants may invite others", Config.AllowInvites);
        f.AddBool("muc#roomconfig_enablearchiving", "Archive messages (persistent rooms; XEP-0313)", Config.Archiving);
        return f;
    }

    /// Reads a submitted form into the config; returns a problem text for a value that cannot be used.
    private string? ApplyForm(DataForm form, MucRoomConfig next)
    {
        string? problem = null;
        void Bool(string var, Action<bool> set)
        {
            var v = form.Bool(var, out var ok);
            if (!ok) problem ??= $"{var} is not a boolean";
            else if (v is { } b) set(b);
        }
        if (form.Has("muc#roomconfig_roomname")) next.Title = form.Value("muc#roomconfig_roomname") ?? "";
        if (form.Has("muc#roomconfig_roomdesc")) next.Description = form.Value("muc#roomconfig_roomdesc") ?? "";
        Bool("muc#roomconfig_persistentroom", b => next.Persistent = b);
        Bool("muc#roomconfig_publicroom", b => next.Public = b);
        Bool("muc#roomconfig_membersonly", b => next.MembersOnly = b);
        Bool("muc#roomconfig_moderatedroom", b => next.Moderated = b);
        Bool("muc#roomconfig_passwordprotectedroom", b => next.PasswordProtected = b);
        Bool("muc#roomconfig_changesubject", b => next.ChangeSubject = b);
        Bool("muc#roomconfig_allowinvites", b => next.AllowInvites = b);
        // The field clients use for MAM in rooms; XEP-0045's "enablelogging" and the short "mam" mean the same here.
        Bool("muc#roomconfig_enablelogging", b => next.Archiving = b);
        Bool("mam", b => next.Archiving = b);
        Bool("muc#roomconfig_enablearchiving", b => next.Archiving = b);
        if (form.Has("muc#roomconfig_roomsecret")) next.Password = form.Value("muc#roomconfig_roomsecret") ?? "";
        if (form.Value("muc#roomconfig_whois") is { } whois)
        {
            if (whois is "anyone" or "moderators") next.NonAnonymous = whois == "anyone";
            else problem ??= "muc#roomconfig_whois must be anyone or moderators";
        }
        if (form.Value("muc#roomconfig_maxusers") is { } max)
        {
            if (max is "none" or "") next.MaxUsers = 0;
            else if (int.TryParse(max, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0) next.MaxUsers = n;
            else problem ??= "muc#roomconfig_maxusers must be a positive number or none";
        }
        if ((form.Value("muc#maxhistoryfetch") ?? form.Value("muc#roomconfig_historylength")) is { } hist)
        {
            if (int.TryParse(hist, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) next.HistoryLength = Math.Min(n, service.Options.MaxHistoryMessages);
            else problem ??= "muc#maxhistoryfetch must be a number";
        }
        if (form.Value("muc#roomconfig_allowpm") is { } pm)
        {
            if (pm is "anyone" or "participants" or "moderators" or "none") next.AllowPm = pm;
            else problem ??= "muc#roomconfig_allowpm must be anyone, participants, moderators or none";
        }
        if (next.PasswordProtected && next.Password.Length == 0) problem ??= "A password-protected room needs a password";
        return problem;
    }

    private async ValueTask ApplyConfigAsync(MucRoomConfig next)
    {
        var before = Config;
        bool wasLocked = Locked;
        Config = next;
        Locked = false;
        if (before.Persistent && !next.Persistent) await service.Store.DeleteRoomAsync(RoomText);
        while (_history.Count > HistoryCapacity) _history.RemoveFirst();
        if (!wasLocked)
        {
            // §10.2.1: occupants hear that the configuration changed, and whether real JIDs became visible (172/173).
            var codes = new List<int> { 104 };
            if (next.NonAnonymous && !before.NonAnonymous) codes.Add(172);
            if (!next.NonAnonymous && before.NonAnonymous) codes.Add(173);
            // 170/171: the room is now logged (archived) or no longer.
            bool loggedBefore = before.Persistent && before.Archiving, loggedNow = next.Persistent && next.Archiving;
            if (loggedNow && !loggedBefore) codes.Add(170);
            if (!loggedNow && loggedBefore) codes.Add(171);
            StatusMessage([.. codes]);
        }
        if (next.MembersOnly && !before.MembersOnly)
        {
            // Status code 322 (§9.4 and §10.2): those without membership leave a room that became members-only.
            foreach (var o in _occupants.Where(o => o.Affiliation < MucAffiliation.Member).ToList())
                RemoveOccupant(o, [322], x: null);
        }
        await SaveAsync();
    }

    /// The server's administrator destroys the room (xmppd room destroy), as an owner would (§10.9); false when the
    /// room does not exist.
    public Task<bool> DestroyByAdminAsync(string? reason) => Run(async () =>
    {
        if (!Exists) return false;
        await DestroyAsync(null, reason, null);
        return true;
    });

    /// §10.9: everyone leaves with the reason and an alternate venue; the room and what it stored are gone.
    private async ValueTask DestroyAsync(string? alternate, string? reason, string? password)
    {
        foreach (var o in _occupants.ToList())
        {
            RemoveOccupant(o, [], x: x =>
            {
                var d = new Element("destroy", Ns.MucUser);
                if (alternate is not null) d.SetAttr("jid", alternate);
                if (reason is not null) d.Add(new Element("reason", Ns.MucUser).SetText(reason));
                if (password is not null) d.Add(new Element("password", Ns.MucUser).SetText(password));
                x.Add(d);
            }, item: i => i.SetAttr("affiliation", "none").SetAttr("role", "none").SetAttr("jid", null));
        }
        if (Config.Persistent) await service.Store.DeleteRoomAsync(RoomText);
        await service.UpdateSummaryAsync(Jid.Local!, null);
        Exists = false;
        Locked = false;
        Config = new MucRoomConfig();
        Affiliations.Clear();
        Nicks.Clear();
        Subject = SubjectNick = null;
        _history.Clear();
    }
}
