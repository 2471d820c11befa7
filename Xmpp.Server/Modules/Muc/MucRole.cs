namespace Xmpp.Server.Modules.Muc;

/// XEP-0045 §5.1: an occupant's role while in the room, in rising order of privilege.
public enum MucRole { None, Visitor, Participant, Moderator }
