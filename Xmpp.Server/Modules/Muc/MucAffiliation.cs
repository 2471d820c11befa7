namespace Xmpp.Server.Modules.Muc;

/// XEP-0045 §5.2: long-lived standing of a bare JID in a room, in rising order of privilege.
public enum MucAffiliation { Outcast, None, Member, Admin, Owner }
