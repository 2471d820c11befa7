// The server-wide block list as an admin command of our own (XEP-0050), next to XEP-0133's: one form lists the entries.
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Limits;

namespace Xmpp.Server.Modules.AdHoc;

/// Shows the block list in a form whose jid-multi field holds the entries added at run time; the submitted field is
/// the new list (entries added are blocked at once, entries taken out unblocked). Entries from the configuration are
/// shown apart, as fixed text, since only the configuration can remove them. The same list as `xmppd block`.
public sealed class BlockListCommandModule(AdHocCommands commands, BlockList blocks) : IXmppModule
{
    public const string Node = "urn:xmppd:blocklist#edit";

    public void Register(IModuleBuilder module) =>
        commands.Add(Node, "Edit the Server's Block List", CommandAccess.Admins, _ =>
        {
            var form = new DataForm("form", Node);
            form.Element.Add(new Element("title", Ns.DataForms).SetText("Server-wide block list"));
            form.Element.Add(new Element("instructions", Ns.DataForms).SetText(
                "Bare JIDs (spammer@example.net) and domains (spam.example, with its subdomains), one a line. "
                + "No stanza is exchanged with them, and links to a blocked domain close."));
            var configured = blocks.Entries.Where(e => e.Source == "config").Select(e => e.Entry).ToArray();
            if (configured.Length > 0)
                form.AddField("configured", "fixed", "Blocked by the configuration (Xmpp:Blocked), changed only there", configured);
            form.AddField("entries", "jid-multi", "Blocked", blocks.Stored);
            return form;
        }, SubmitAsync);

    private async ValueTask<AdHocResult> SubmitAsync(AdHocRequest r, DataForm? f)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var value in f!.Values("entries"))
        {
            if (value.Trim().Length == 0) continue;
            // All or nothing: one bad line changes nothing, so the admin can correct it and submit again.
            if (!BlockList.TryNormalize(value, out var entry, out var problem)) return AdHocResult.Failed(problem);
            wanted.Add(entry);
        }
        var by = r.From.Bare.ToString();
        int added = 0, removed = 0;
        foreach (var entry in wanted.Order(StringComparer.Ordinal))
            if (await blocks.AddAsync(entry, by)) added++;
        foreach (var entry in blocks.Stored.Where(e => !wanted.Contains(e)))
            if (await blocks.RemoveAsync(entry, by)) removed++;
        return AdHocResult.Done($"{added} entr{(added == 1 ? "y" : "ies")} added, {removed} removed; {blocks.Entries.Count} blocked in all");
    }
}
