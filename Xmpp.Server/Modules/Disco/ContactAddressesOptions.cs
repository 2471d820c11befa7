namespace Xmpp.Server.Modules.Disco;

/// XEP-0157 contact addresses, announced in the server's disco#info as URIs (mailto:, xmpp:, https:). Empty lists
/// are left out; with all of them empty no form is announced.
public sealed class ContactAddressesOptions
{
    public List<string> Abuse { get; set; } = [];
    public List<string> Admin { get; set; } = [];
    public List<string> Feedback { get; set; } = [];
    public List<string> Sales { get; set; } = [];
    public List<string> Security { get; set; } = [];
    public List<string> Status { get; set; } = [];
    public List<string> Support { get; set; } = [];

    /// The XEP-0157 field names with their configured addresses.
    public IEnumerable<(string Field, List<string> Addresses)> Fields() =>
    [
        ("abuse-addresses", Abuse), ("admin-addresses", Admin), ("feedback-addresses", Feedback), ("sales-addresses", Sales),
        ("security-addresses", Security), ("status-addresses", Status), ("support-addresses", Support),
    ];
}
