namespace Xmpp.Server.Modules.Pep;

/// A node as it was at one moment, safe to read outside the account's gate.
public sealed record PepNodeSnapshot(string Name, PepNodeConfig Config, IReadOnlyList<PepItem> Items, IReadOnlyList<string> Members)
{
    public IEnumerable<PepItem> Live(DateTimeOffset now) => Items.Where(i => !i.IsExpired(Config, now));

    public PepItem? Latest(DateTimeOffset now) => Live(now).LastOrDefault();
}
