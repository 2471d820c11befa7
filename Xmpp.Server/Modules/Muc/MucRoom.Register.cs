// XEP-0045 §7.10 registering with a room (reserved nicknames), §7.12 discovering one's reserved nickname.
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Precis;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Muc;

internal sealed partial class MucRoom
{
    public const string RoomUserNode = "x-roomuser-item";

    /// Reserved nicknames by real bare JID; they survive restarts with the room.
    public Dictionary<string, string> Nicks { get; private set; } = new(StringComparer.Ordinal);

    /// The bare JID that reserved this nick, if anyone did (compared as RFC 8266 nicknames).
    private string? ReservedBy(string nick)
    {
        string key;
        try { key = Precis.NicknameComparisonKey(nick); }
        catch (FormatException) { return null; }
        foreach (var (bare, reserved) in Nicks)
            if (Precis.NicknameComparisonKey(reserved) == key) return bare;
        return null;
    }

    /// §7.10: the form, a registration or (XEP-0077 §3.2) its removal. Registering makes the user a member with a
    /// reserved nick. In a members-only room only those already affiliated may register (reserve their nick): the
    /// XEP leaves approval of strangers to the room, and here membership is given by admins.
    private async ValueTask RegisterAsync(StanzaContext c, Element query)
    {
        var bare = c.From.Bare.ToString();
        var affiliation = AffiliationOf(c.From);
        if (!Exists || (Locked && affiliation != MucAffiliation.Owner))
        {
            Error(c.Stanza, StanzaErrors.ItemNotFound);
            return;
        }
        if (affiliation == MucAffiliation.Outcast)
        {
            Error(c.Stanza, StanzaErrors.Forbidden, "You are banned from this room");
            return;
        }
        if (Config.MembersOnly && affiliation < MucAffiliation.Member)
        {
            Error(c.Stanza, StanzaErrors.RegistrationRequired, "Only members may register with a members-only room; ask an admin");
            return;
        }
        Nicks.TryGetValue(bare, out var current);
        if (c.Type == "get")
        {
            var result = new Element("query", Ns.Register);
            if (current is not null)
                result.Add(new Element("registered", Ns.Register)).Add(new Element("username", Ns.Register).SetText(current));
            result.Add(new DataForm("form", Ns.MucRegister)
                .AddField("muc#register_roomnick", "text-single", "Nickname", current is null ? [] : [current]).Element);
            Result(c, result);
            return;
        }
        if (query.Child("remove", Ns.Register) is not null)
        {
            if (current is null)
            {
                Error(c.Stanza, StanzaErrors.ItemNotFound, "You are not registered with this room");
                return;
            }
            Nicks.Remove(bare);
            Result(c);
            // Unregistering gives up the membership registering gave; admins and owners keep theirs.
            if (affiliation == MucAffiliation.Member) SetAffiliation(c.From.Bare, MucAffiliation.None, null);
            await SaveAsync();
            return;
        }
        if (DataForm.In(query) is not { } form || (form.Type == "submit" && form.FormType is { } ft && ft != Ns.MucRegister))
        {
            Error(c.Stanza, StanzaErrors.BadRequest, "Expected a muc#register form");
            return;
        }
        if (form.Type == "cancel")
        {
            Result(c);
            return;
        }
        if (form.Value("muc#register_roomnick") is not { } requested || !Precis.TryEnforceNickname(requested, out var nick))
        {
            Error(c.Stanza, StanzaErrors.NotAcceptable, "A valid nickname (RFC 8266) is required");
            return;
        }
        if ((ReservedBy(nick) is { } owner && owner != bare) || (ByNick(nick) is { } occupant && occupant.Bare.ToString() != bare))
        {
            Error(c.Stanza, StanzaErrors.Conflict, "That nickname is reserved or in use");
            return;
        }
        Nicks[bare] = nick;
        Result(c);
        if (affiliation == MucAffiliation.None) SetAffiliation(c.From.Bare, MucAffiliation.Member, null);
        await SaveAsync();
    }

    /// §7.12: the disco#info node x-roomuser-item names the asker's reserved nick, or nothing.
    private void ReservedNickInfo(StanzaContext c)
    {
        var query = new Element("query", Ns.DiscoInfo).SetAttr("node", RoomUserNode);
        if (Nicks.TryGetValue(c.From.Bare.ToString(), out var nick))
            query.Add(new Element("identity", Ns.DiscoInfo).SetAttr("category", "conference").SetAttr("type", "text").SetAttr("name", nick));
        Result(c, query);
    }
}
