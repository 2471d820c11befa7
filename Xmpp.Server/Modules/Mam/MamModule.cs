// XEP-0313: Message Archive Management for user archives, with XEP-0359 stanza ids, XEP-0059 paging and
// XEP-0441 archiving preferences.
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Roster;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Mam;

/// Every conversation message an account sends or receives is archived once in that account's archive and can be
/// queried back in arrival order, page by page. Archiving never delays routing: the stanza-id is chosen here, the
/// append is queued to the storage writer (group commit) and a query waits only for its own account's pending appends.
/// The writer is first-in first-out, so any later durable acknowledgement (the offline spool's, a future SM ack that
/// flushes storage) also covers every archive write queued before it.
[Xep("XEP-0313", "1.1.3", "user archives; before-id/after-id/ids, flipped pages and metadata (#extended)")]
[Xep("XEP-0359", "0.7.0", "stanza-id by the account on archived messages")]
[Xep("XEP-0059", "1.0", "paging of archive queries, without index")]
[Xep("XEP-0441", "0.2.0", "always/never/roster preferences")]
public sealed partial class MamModule(
    IStorage storage, IRosterService rosters, ServedDomains domains, XmppServerOptionsAccessor options, ILogger<MamModule> logger)
    : IXmppModule
{
    public const string Collection = "mam";

    private readonly IArchiveStore _archive = storage.Archive(Collection);

    /// Appends queued per account, so that a query sees every message archived before it was sent.
    private readonly QueuedWrites _queued = new(storage, (user, error) => ReportFailure(logger, user, error));

    private static Exception? s_lastReported;

    // A log that fails stops and fails every write after with the same exception: one line for it, not one per account.
    private static void ReportFailure(ILogger logger, string user, Exception error)
    {
        if (Interlocked.Exchange(ref s_lastReported, error) != error)
            logger.LogError(error, "Archiving a message for {User} failed", user);
    }

    private MamOptions Options => options.Value.Mam;

    public void Register(IModuleBuilder module)
    {
        module.AccountFeature(Ns.Mam);
        module.AccountFeature(Ns.MamExtended);
        module.AccountFeature(Ns.StanzaId);
        module.Iq(IqTarget.Self, "query", Ns.Mam, QueryAsync);
        module.Iq(IqTarget.Self, "metadata", Ns.Mam, MetadataAsync);
        module.Iq(IqTarget.Self, "prefs", Ns.Mam, PrefsAsync);
        // XEP-0313 §8.1: only the account itself may read its archive.
        module.Iq(IqTarget.Account, "query", Ns.Mam, ForbiddenAsync);
        module.Iq(IqTarget.Account, "metadata", Ns.Mam, ForbiddenAsync);
        module.Iq(IqTarget.Account, "prefs", Ns.Mam, ForbiddenAsync);
        // Late among the Inbound hooks, so that a stanza another module refuses (e.g. blocking) is not archived.
        module.Hook(HookPoint.Inbound, 800, OutgoingAsync);
        // XEP-0359 §4: a stanza-id 'by' one of our addresses is ours to assign, from whichever server it comes.
        module.Hook(HookPoint.FromRemote, 800, c =>
        {
            if (c.Name == "message") StripForgedStanzaIds(c.Stanza);
            return ValueTask.FromResult(false);
        });
        // Before the offline module's hooks (DeliverToSession, Undeliverable 100), so held and spooled copies carry the id.
        module.Hook(HookPoint.Deliver, 100, IncomingAsync);
        module.Hook(HookPoint.Undeliverable, 50, IncomingAsync);
        module.OnAccountDeleted(DeleteAccountAsync);
    }

    private static ValueTask ForbiddenAsync(IqContext c)
    {
        c.Error(StanzaErrors.Forbidden);
        return ValueTask.CompletedTask;
    }

    private async ValueTask DeleteAccountAsync(string user)
    {
        await _queued.WaitAsync(user);
        await _archive.DeleteAllAsync(user);
        await storage.KeyValue.DeleteAsync(user, PrefsKey);
        _prefs.TryRemove(user, out _);
    }
}
