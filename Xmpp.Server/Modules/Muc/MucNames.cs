namespace Xmpp.Server.Modules.Muc;

/// The wire names of affiliations and roles (XEP-0045 §5).
internal static class MucNames
{
    public static string Of(MucAffiliation a) => a switch
    {
        MucAffiliation.Owner => "owner",
        MucAffiliation.Admin => "admin",
        MucAffiliation.Member => "member",
        MucAffiliation.Outcast => "outcast",
        _ => "none",
    };

    public static string Of(MucRole r) => r switch
    {
        MucRole.Moderator => "moderator",
        MucRole.Participant => "participant",
        MucRole.Visitor => "visitor",
        _ => "none",
    };

    public static bool TryAffiliation(string? s, out MucAffiliation a)
    {
        a = s switch
        {
            "owner" => MucAffiliation.Owner,
            "admin" => MucAffiliation.Admin,
            "member" => MucAffiliation.Member,
            "outcast" => MucAffiliation.Outcast,
            "none" => MucAffiliation.None,
            _ => (MucAffiliation)(-1),
        };
        return (int)a >= 0;
    }

    public static bool TryRole(string? s, out MucRole r)
    {
        r = s switch
        {
            "moderator" => MucRole.Moderator,
            "participant" => MucRole.Participant,
            "visitor" => MucRole.Visitor,
            "none" => MucRole.None,
            _ => (MucRole)(-1),
        };
        return (int)r >= 0;
    }
}
