namespace Xmpp.Server.Modules.Requests;

/// Xmpp:MessageRequests: holding messages from strangers as requests, for the accounts that ask for it.
public sealed class MessageRequestsOptions
{
    /// Whether an account that never chose holds strangers' messages (each account can change it by ad-hoc command).
    public bool DefaultEnabled { get; set; }

    /// Strangers with waiting messages per account; a message from one more is refused with resource-constraint.
    public int MaxSendersPerAccount { get; set; } = 100;

    /// Waiting messages per stranger; more are refused with resource-constraint.
    public int MaxMessagesPerSender { get; set; } = 20;
}
