namespace Xmpp.Server.Modules.Pep;

/// One node of an account's PEP service. Changed only under the account's gate (PepAccount); readers take a Snapshot.
public sealed class PepNode(string name, PepNodeConfig config)
{
    public string Name { get; } = name;
    public PepNodeConfig Config { get; set; } = config;

    /// Items oldest first; a republished id moves to the end (XEP-0060 §7.1.2: publishing an existing id overwrites it).
    public List<PepItem> Items { get; } = [];

    /// Bare JIDs with affiliation "member" (XEP-0060 §4.1): they pass the whitelist access model.
    public SortedSet<string> Members { get; } = new(StringComparer.Ordinal);

    public PepNodeSnapshot Snapshot() => new(Name, Config, Items.ToArray(), Members.ToArray());
}
