// XEP-0313 §4: the query steps every archive shares (user archives here, room archives in Muc): limits, ids to store
// cursors, result messages and <fin/>.
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Mam;

/// Reads one owner's archive for a parsed query; the caller decides who may ask and what 'with' means.
public static class MamArchiveReader
{
    /// The query as a store query, or null with the error condition and text to answer.
    public static async ValueTask<(ArchiveQuery? Query, string Condition, string? Text)> ToStoreQueryAsync(
        IArchiveStore archive, string owner, MamQuery query, string? with, MamOptions options)
    {
        if (query.Set?.Index is not null)
            // XEP-0059 §2.5: paging by index is optional; archives page by id only.
            return (null, StanzaErrors.FeatureNotImplemented, "RSM index is not supported");
        if (query.Ids is { } ids && ids.Count > options.MaxIds)
            return (null, StanzaErrors.PolicyViolation, $"at most {options.MaxIds} ids per query");

        // §4.1.3, §4.3.2: an id in after-id, before-id, ids, <after/> or <before/> that the archive does not hold.
        const string missing = "no such message in the archive";
        long? after = null, before = null;
        foreach (var id in new[] { query.AfterId, query.Set?.After })
        {
            if (id is null) continue;
            if (await archive.FindIdAsync(owner, id) is not { } n) return (null, StanzaErrors.ItemNotFound, missing);
            after = Math.Max(after ?? 0, n);
        }
        var backward = query.Set?.Before is not null;
        foreach (var id in new[] { query.BeforeId, query.Set?.Before is { Length: > 0 } b ? b : null })
        {
            if (id is null) continue;
            if (await archive.FindIdAsync(owner, id) is not { } n) return (null, StanzaErrors.ItemNotFound, missing);
            before = Math.Min(before ?? long.MaxValue, n);
        }
        if (query.Ids is { } wanted)
            foreach (var id in wanted)
                if (await archive.FindIdAsync(owner, id) is null) return (null, StanzaErrors.ItemNotFound, missing);

        // §4.3.1, XEP-0059 §2.1: the server may cap the page; without max the cap is the page size.
        var max = Math.Min(query.Set?.Max ?? options.MaxPageSize, options.MaxPageSize);
        return (new ArchiveQuery(owner, with, query.Start, query.End, after, before, max, Reverse: backward, StanzaIds: query.Ids),
            StanzaErrors.BadRequest, null);
    }

    /// XEP-0313 (#extended) metadata: the first and last message of the archive, nothing for an empty one.
    public static async ValueTask<Element> MetadataAsync(IArchiveStore archive, string owner)
    {
        var first = await archive.QueryAsync(new ArchiveQuery(owner, Max: 1));
        var last = await archive.QueryAsync(new ArchiveQuery(owner, Max: 1, Reverse: true));
        var metadata = new Element("metadata", Ns.Mam);
        if (first.Records is [var oldest] && last.Records is [var newest])
        {
            metadata.Add(new Element("start", Ns.Mam).SetAttr("id", oldest.StanzaId).SetAttr("timestamp", DateTimeProfile.Format(oldest.Stamp)));
            metadata.Add(new Element("end", Ns.Mam).SetAttr("id", newest.StanzaId).SetAttr("timestamp", DateTimeProfile.Format(newest.Stamp)));
        }
        return metadata;
    }

    /// The result messages from the archive's address to the querier, in the order to send them, and the &lt;fin/&gt;
    /// for the iq result. view may change or drop (null) each stored message before it is forwarded.
    public static (List<Element> Messages, Element Fin) Results(MamQuery query, ArchivePage page, string archive, string to,
        Func<Element, Element?>? view = null)
    {
        var results = new List<(string Id, Element Message)>(page.Records.Count);
        foreach (var record in page.Records)
        {
            if (record.StanzaId is null) continue;
            var stored = StoredStanza.Parse(record.Payload);
            if (view is not null)
            {
                if (view(stored) is not { } shown) continue;
                stored = shown;
            }
            var result = new Element("result", Ns.Mam).SetAttr("queryid", query.QueryId).SetAttr("id", record.StanzaId)
                .Add(Forwarded.Wrap(stored, record.Stamp));
            results.Add((record.StanzaId, new Element("message", Ns.Client)
                .SetAttr("from", archive).SetAttr("to", to).SetAttr("id", Guid.NewGuid().ToString("D")).Add(result)));
        }
        // §4.3.4 (#extended): a flipped page is sent newest first; which messages it holds does not change.
        var order = query.FlipPage ? Enumerable.Reverse(results) : results;
        var fin = new Element("fin", Ns.Mam)
            .SetAttr("complete", page.Complete ? "true" : "false")
            .Add(ResultSetRequest.Response(results.Count > 0 ? results[0].Id : null, null, results.Count > 0 ? results[^1].Id : null, page.TotalCount));
        return (order.Select(r => r.Message).ToList(), fin);
    }
}
