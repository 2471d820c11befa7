namespace Xmpp.Storage;

// A local account; Username is the already-normalized localpart.
public sealed record Account(
    string Username,
    IReadOnlyList<ScramKeys> Credentials,
    DateTimeOffset Created,
    DateTimeOffset? LastLogout = null,
    string? LastStatus = null);
