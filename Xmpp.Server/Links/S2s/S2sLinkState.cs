namespace Xmpp.Server.Links.S2s;

/// Where an outbound server link is in its life.
public enum S2sLinkState { Connecting, Established, Closing, Closed }
