namespace Xmpp.Server.Limits;

/// Server-wide block list (Xmpp:Blocked): addresses and domains this server exchanges no stanzas with at all, local
/// accounts included. Domains cover their subdomains; they are also never federated with (as Xmpp:S2s:BlockedDomains).
public sealed class BlockListOptions
{
    /// Bare JIDs ("spammer@example.net"); every resource of each is blocked.
    public List<string> Jids { get; set; } = [];

    /// Domains ("spam.example"), each with its subdomains.
    public List<string> Domains { get; set; } = [];
}
