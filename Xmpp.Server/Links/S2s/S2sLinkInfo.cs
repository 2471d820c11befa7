namespace Xmpp.Server.Links.S2s;

/// What one server link looks like from outside: for admin output, logs and tests.
public sealed record S2sLinkInfo(bool Outbound, string Local, string Remote, string? Authentication, string State, string? Peer);
