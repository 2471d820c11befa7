namespace Xmpp.Server.Modules.Push;

/// One enabled XEP-0357 push service of an account: where to publish, and the publish options to send along.
public sealed record PushRegistration(string Jid, string? Node, Dictionary<string, List<string>> PublishOptions, DateTimeOffset Enabled);
