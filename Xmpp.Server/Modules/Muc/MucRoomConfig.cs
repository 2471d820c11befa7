namespace Xmpp.Server.Modules.Muc;

/// A room's settings (XEP-0045 §10.2, the muc#roomconfig form); stored as JSON with the room.
public sealed class MucRoomConfig
{
    public string Title { get; set; } = "";
    public string Description { get; set; } = "";
    public bool Persistent { get; set; }
    public bool Public { get; set; } = true;
    public bool MembersOnly { get; set; }
    public bool Moderated { get; set; }
    public bool PasswordProtected { get; set; }
    public string Password { get; set; } = "";

    /// True: everyone sees occupants' real JIDs (non-anonymous, whois anyone); false: only moderators do.
    public bool NonAnonymous { get; set; }

    /// 0 means the service maximum.
    public int MaxUsers { get; set; }
    public int HistoryLength { get; set; } = 20;

    /// Who may send private messages: anyone, participants, moderators or none.
    public string AllowPm { get; set; } = "anyone";
    public bool ChangeSubject { get; set; }
    public bool AllowInvites { get; set; }

    /// XEP-0313 (MUC archives): groupchat messages go to the room's archive (persistent rooms only), queryable with MAM.
    public bool Archiving { get; set; } = true;

    public MucRoomConfig Clone() => (MucRoomConfig)MemberwiseClone();
}

/// What survives a restart of a persistent room.
public sealed class MucRoomRecord
{
    public MucRoomConfig Config { get; set; } = new();
    public Dictionary<string, MucAffiliation> Affiliations { get; set; } = new(StringComparer.Ordinal);
    public string? Subject { get; set; }
    public string? SubjectNick { get; set; }

    /// Reserved nicknames (XEP-0045 §7.10) by real bare JID.
    public Dictionary<string, string> Nicks { get; set; } = new(StringComparer.Ordinal);
}

/// A room as the service directory knows it without loading it: for disco#items and the per-user room limit.
public sealed class MucRoomSummary
{
    public string Title { get; set; } = "";
    public bool Public { get; set; }
    public bool Persistent { get; set; }
    public List<string> Owners { get; set; } = [];
}
