namespace Xmpp.Protocol;

/// <summary>XML namespaces used by the server, in one place so handlers never spell them out.</summary>
public static class Ns
{
    public const string Xml = "http://www.w3.org/XML/1998/namespace";
    public const string Streams = "http://etherx.jabber.org/streams";
    public const string Framing = "urn:ietf:params:xml:ns:xmpp-framing";
    public const string HttpBind = "http://jabber.org/protocol/httpbind";
    public const string XBosh = "urn:xmpp:xbosh";
    /// <summary>Frames and session records that nodes of one cluster exchange through Redis (never sent to clients).</summary>
    public const string Cluster = "urn:xmpp-server:cluster:0";
    public const string Client = "jabber:client";
    public const string Server = "jabber:server";
    public const string Dialback = "jabber:server:dialback";
    public const string ComponentAccept = "jabber:component:accept";
    public const string DialbackFeature = "urn:xmpp:features:dialback";
    public const string Bidi = "urn:xmpp:bidi";
    public const string BidiFeature = "urn:xmpp:features:bidi";
    public const string StreamErrors = "urn:ietf:params:xml:ns:xmpp-streams";
    public const string StanzaErrors = "urn:ietf:params:xml:ns:xmpp-stanzas";
    public const string Tls = "urn:ietf:params:xml:ns:xmpp-tls";
    public const string Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
    public const string Bind = "urn:ietf:params:xml:ns:xmpp-bind";
    public const string Session = "urn:ietf:params:xml:ns:xmpp-session";
    public const string Roster = "jabber:iq:roster";
    public const string RosterVer = "urn:xmpp:features:rosterver";
    public const string PreApproval = "urn:xmpp:features:pre-approval";
    public const string SubscriptionPreApproval = "urn:xmpp:features:pre-approval";
    public const string DiscoInfo = "http://jabber.org/protocol/disco#info";
    public const string DiscoItems = "http://jabber.org/protocol/disco#items";
    public const string Caps = "http://jabber.org/protocol/caps";
    public const string Ping = "urn:xmpp:ping";
    public const string Time = "urn:xmpp:time";
    public const string Version = "jabber:iq:version";
    public const string Register = "jabber:iq:register";
    public const string RegisterFeature = "http://jabber.org/features/iq-register";
    /// XEP-0401 invitations: the ad-hoc command nodes' prefix and the older stream feature for pre-authenticated registration.
    public const string Invite = "urn:xmpp:invite";
    /// XEP-0445 stream feature: the server takes an invitation token before in-band registration.
    public const string IbrToken = "urn:xmpp:ibr-token:0";
    /// XEP-0379 pre-authenticated roster subscription: the &lt;preauth token=''/&gt; element (also XEP-0445's IQ).
    public const string Pars = "urn:xmpp:pars:0";
    public const string Delay = "urn:xmpp:delay";
    public const string Offline = "msgoffline";
    public const string Receipts = "urn:xmpp:receipts";
    public const string ChatMarkers = "urn:xmpp:chat-markers:0";
    public const string DataForms = "jabber:x:data";
    public const string Commands = "http://jabber.org/protocol/commands";
    public const string Admin = "http://jabber.org/protocol/admin";
    public const string ServerInfo = "http://jabber.org/network/serverinfo";
    public const string Limits = "urn:xmpp:serverinfo:0";
    public const string StreamLimits = "urn:xmpp:stream-limits:0";
    public const string Hints = "urn:xmpp:hints";
    public const string LastActivity = "jabber:iq:last";
    public const string SaslChannelBinding = "urn:xmpp:sasl-cb:0";
    public const string Sasl2 = "urn:xmpp:sasl:2";
    public const string Bind2 = "urn:xmpp:bind:0";
    public const string Fast = "urn:xmpp:fast:0";
    public const string Push = "urn:xmpp:push:0";
    public const string PushSummary = "urn:xmpp:push:summary";
    public const string OmemoLegacy = "eu.siacs.conversations.axolotl";
    public const string Omemo2 = "urn:xmpp:omemo:2";
    public const string PubSubPublishOptions = "http://jabber.org/protocol/pubsub#publish-options";
    public const string StreamManagement = "urn:xmpp:sm:3";
    public const string Carbons = "urn:xmpp:carbons:2";
    public const string Forward = "urn:xmpp:forward:0";
    public const string Csi = "urn:xmpp:csi:0";
    public const string Mam = "urn:xmpp:mam:2";
    public const string MamExtended = "urn:xmpp:mam:2#extended";
    public const string DataFormsValidate = "http://jabber.org/protocol/xdata-validate";
    public const string Rsm = "http://jabber.org/protocol/rsm";
    public const string StanzaId = "urn:xmpp:sid:0";
    public const string ChatStates = "http://jabber.org/protocol/chatstates";
    public const string VCard = "vcard-temp";
    public const string VCardUpdate = "vcard-temp:x:update";
    public const string Private = "jabber:iq:private";
    public const string Blocking = "urn:xmpp:blocking";
    public const string BlockingErrors = "urn:xmpp:blocking:errors";
    public const string Reporting = "urn:xmpp:reporting:1";
    public const string ReportingSpam = "urn:xmpp:reporting:spam";
    public const string ReportingAbuse = "urn:xmpp:reporting:abuse";
    public const string PubSub = "http://jabber.org/protocol/pubsub";
    public const string PubSubEvent = "http://jabber.org/protocol/pubsub#event";
    public const string PubSubOwner = "http://jabber.org/protocol/pubsub#owner";
    public const string PubSubErrors = "http://jabber.org/protocol/pubsub#errors";
    public const string PubSubNodeConfig = "http://jabber.org/protocol/pubsub#node_config";
    /// <summary>The product's own PEP node for short-lived status posts (documented in the README).</summary>
    public const string UserStatus = "urn:xmppd:status:0";

    /// This server's own ad-hoc command node for account invitations that make the invitee an administrator.
    public const string AdminInvite = "urn:xmppd:invite#create-admin-account";
    public const string Muc = "http://jabber.org/protocol/muc";
    public const string MucUser = "http://jabber.org/protocol/muc#user";
    public const string MucAdmin = "http://jabber.org/protocol/muc#admin";
    public const string MucOwner = "http://jabber.org/protocol/muc#owner";
    public const string MucRoomConfig = "http://jabber.org/protocol/muc#roomconfig";
    public const string MucRoomInfo = "http://jabber.org/protocol/muc#roominfo";
    public const string MucStableId = "http://jabber.org/protocol/muc#stable_id";
    public const string MucSelfPing = "http://jabber.org/protocol/muc#self-ping-optimization";
    public const string MucRegister = "http://jabber.org/protocol/muc#register";
    public const string MucRequest = "http://jabber.org/protocol/muc#request";
    public const string MessageModerate = "urn:xmpp:message-moderate:1";
    public const string MessageRetract = "urn:xmpp:message-retract:1";
    public const string Fallback = "urn:xmpp:fallback:0";
    public const string Reference = "urn:xmpp:reference:0";
    public const string ConferenceInvite = "jabber:x:conference";
    public const string OccupantId = "urn:xmpp:occupant-id:0";
    public const string HttpUpload = "urn:xmpp:http:upload:0";
    public const string ExtDisco = "urn:xmpp:extdisco:2";
    public const string Bytestreams = "http://jabber.org/protocol/bytestreams";
    public const string MdsDisplayed = "urn:xmpp:mds:displayed:0";
    public const string MdsServerAssist = "urn:xmpp:mds:server-assist:0";
    public const string AvatarData = "urn:xmpp:avatar:data";
    public const string AvatarMetadata = "urn:xmpp:avatar:metadata";
    public const string PepVCardConversion = "urn:xmpp:pep-vcard-conversion:0";
    public const string Bookmarks = "urn:xmpp:bookmarks:1";
    public const string BookmarksCompat = "urn:xmpp:bookmarks:1#compat";
    public const string BookmarksConversion = "urn:xmpp:bookmarks-conversion:0";
    public const string LegacyBookmarks = "storage:bookmarks";
}
