using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Mam;

public sealed partial class MamModule
{
    /// XEP-0313 §6.1.1: chat and normal messages with a body, plus delivery receipts (XEP-0184) and chat markers
    /// (XEP-0333), which clients need to show ticks on archived messages; never those hinted not to be stored (XEP-0334).
    public static bool IsArchivable(Element message)
    {
        if (message.Name != "message" || (message.Attr("type") ?? "normal") is not ("chat" or "normal")) return false;
        if (message.Child("no-store", Ns.Hints) is not null || message.Child("no-permanent-store", Ns.Hints) is not null) return false;
        if (message.Child("body", Ns.Client) is not null) return true;
        if (message.Child("received", Ns.Receipts) is not null) return true;
        if (message.ChildIn(Ns.ChatMarkers) is { Name: "received" or "displayed" or "acknowledged" }) return true;
        return message.Child("store", Ns.Hints) is not null;
    }

    /// XEP-0359 §4 (rule 3): ids "by" one of our own addresses are ours to assign, so a client's are removed before
    /// routing; a recipient then never sees a forged archive id.
    public int StripForgedStanzaIds(Element message)
    {
        // Nearly every message has none: nothing is allocated unless one is found.
        List<Element>? forged = null;
        foreach (var e in message.Elements("stanza-id", Ns.StanzaId))
            if (Jid.TryParse(e.Attr("by"), out var by) && domains.IsLocal(by))
                (forged ??= []).Add(e);
        if (forged is null) return 0;
        foreach (var e in forged) message.Remove(e);
        return forged.Count;
    }

    private static bool HasStanzaIdBy(Element message, string archive)
    {
        foreach (var e in message.Elements("stanza-id", Ns.StanzaId))
            if (e.Attr("by") == archive) return true;
        return false;
    }

    /// Inbound: a local client's message, archived in the sender's archive as sent (without a stanza-id: XEP-0313 §3.5
    /// forbids showing the sender's archive id to the contact).
    private async ValueTask<bool> OutgoingAsync(StanzaContext c)
    {
        var message = c.Stanza;
        if (message.Name != "message") return false;
        StripForgedStanzaIds(message);
        // A message to the account itself is archived once, as it arrives.
        if (c.From.Local is not { } user || c.To is not { } to || to.BareEquals(c.From)) return false;
        if (!IsArchivable(message) || !await ShouldArchiveAsync(c.From, to)) return false;
        await _queued.AddAsync(user, Append(user, to.Bare.ToString(), message, NewId()), c.Origin);
        return false;
    }

    /// Deliver and Undeliverable: a message reaching a local account, archived once however many resources get it
    /// (XEP-0313 §6.1.1) and stamped with its archive id (XEP-0313 §3.5). A copy already carrying our stanza-id was
    /// archived on an earlier delivery attempt of the same routing: client-supplied ones were stripped on Inbound.
    private async ValueTask<bool> IncomingAsync(StanzaContext c)
    {
        var message = c.Stanza;
        if (message.Name != "message" || c.To?.Local is not { } user) return false;
        var archive = c.To.Bare.ToString();
        if (HasStanzaIdBy(message, archive)) return false;
        if (!IsArchivable(message) || !await ShouldArchiveAsync(c.To, c.From)) return false;
        var id = NewId();
        message.Add(new Element("stanza-id", Ns.StanzaId).SetAttr("by", archive).SetAttr("id", id));
        await _queued.AddAsync(user, Append(user, c.From.Bare.ToString(), message, id), c.Origin);
        return false;
    }

    private static string NewId() => ArchiveIds.Next();

    // Serialized now: the element goes on being routed (and stamped) while the write waits in the queue. A failure is
    // logged by _queued's sweep.
    private Task Append(string owner, string with, Element message, string id) =>
        _archive.AppendAsync(owner, DateTimeOffset.UtcNow, with, ElementWriter.ToBytes(message), id).AsTask();
}
