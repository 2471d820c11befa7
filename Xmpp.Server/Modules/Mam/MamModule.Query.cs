using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Mam;

public sealed partial class MamModule
{
    /// XEP-0313 §4: a get returns the form (§4.1.5); a set sends the matching messages, then the iq result with &lt;fin/&gt;.
    private async ValueTask QueryAsync(IqContext c)
    {
        if (c.IsGet)
        {
            c.Result(new Element("query", Ns.Mam).Add(MamQuery.Form()));
            return;
        }
        var query = MamQuery.Parse(c.Payload, out var condition, out var text);
        if (query is null)
        {
            c.Error(condition, text);
            return;
        }
        if (query.Set?.Index is not null)
        {
            // XEP-0059 §2.5: paging by index is optional; this archive pages by id only.
            c.Error(StanzaErrors.FeatureNotImplemented, "RSM index is not supported");
            return;
        }
        if (query.Ids is { } ids && ids.Count > Options.MaxIds)
        {
            c.Error(StanzaErrors.PolicyViolation, $"at most {Options.MaxIds} ids per query");
            return;
        }
        var owner = c.From.Local!;
        await _queued.WaitAsync(owner);

        var store = await ToStoreQueryAsync(owner, query);
        if (store is null)
        {
            // §4.1.3, §4.3.2: an id in after-id, before-id, ids, <after/> or <before/> that the archive does not hold.
            c.Error(StanzaErrors.ItemNotFound, "no such message in the archive");
            return;
        }
        var page = await _archive.QueryAsync(store);
        Send(c, query, page);
    }

    private async ValueTask<ArchiveQuery?> ToStoreQueryAsync(string owner, MamQuery query)
    {
        long? after = null, before = null;
        foreach (var id in new[] { query.AfterId, query.Set?.After })
        {
            if (id is null) continue;
            if (await _archive.FindIdAsync(owner, id) is not { } n) return null;
            after = Math.Max(after ?? 0, n);
        }
        var backward = query.Set?.Before is not null;
        foreach (var id in new[] { query.BeforeId, query.Set?.Before is { Length: > 0 } b ? b : null })
        {
            if (id is null) continue;
            if (await _archive.FindIdAsync(owner, id) is not { } n) return null;
            before = Math.Min(before ?? long.MaxValue, n);
        }
        if (query.Ids is { } ids)
            foreach (var id in ids)
                if (await _archive.FindIdAsync(owner, id) is null) return null;

        // XEP-0313 §4.3.1, XEP-0059 §2.1: the server may cap the page; without max the cap is the page size.
        var max = Math.Min(query.Set?.Max ?? Options.MaxPageSize, Options.MaxPageSize);
        return new ArchiveQuery(owner, query.With?.ToString(), query.Start, query.End, after, before, max,
            Reverse: backward, StanzaIds: query.Ids);
    }

    private void Send(IqContext c, MamQuery query, ArchivePage page)
    {
        var archive = c.From.Bare.ToString();
        var results = new List<(string Id, Element Message)>(page.Records.Count);
        foreach (var record in page.Records)
        {
            if (record.StanzaId is null) continue;
            var result = new Element("result", Ns.Mam).SetAttr("queryid", query.QueryId).SetAttr("id", record.StanzaId)
                .Add(Forwarded.Wrap(StoredStanza.Parse(record.Payload), record.Stamp));
            results.Add((record.StanzaId, new Element("message", Ns.Client)
                .SetAttr("from", archive).SetAttr("to", c.From.ToString()).SetAttr("id", NewId()).Add(result)));
        }
        // §4.3.4 (#extended): a flipped page is sent newest first; which messages it holds does not change.
        var order = query.FlipPage ? Enumerable.Reverse(results) : results;
        foreach (var (_, message) in order) Deliver(c, message);

        var fin = new Element("fin", Ns.Mam)
            .SetAttr("complete", page.Complete ? "true" : "false")
            .Add(ResultSetRequest.Response(results.Count > 0 ? results[0].Id : null, null, results.Count > 0 ? results[^1].Id : null, page.TotalCount));
        c.Result(fin);
    }

    private void Deliver(IqContext c, Element message)
    {
        // Results go to the querying resource only, ahead of the iq result on the same stream.
        if (c.Origin is { } origin) origin.Send(message);
    }

    /// XEP-0313 §5 (#extended): the first and last message of the archive.
    private async ValueTask MetadataAsync(IqContext c)
    {
        if (!c.IsGet)
        {
            c.Error(StanzaErrors.BadRequest, "metadata is read with a get");
            return;
        }
        var owner = c.From.Local!;
        await _queued.WaitAsync(owner);
        var first = await _archive.QueryAsync(new ArchiveQuery(owner, Max: 1));
        var last = await _archive.QueryAsync(new ArchiveQuery(owner, Max: 1, Reverse: true));
        var metadata = new Element("metadata", Ns.Mam);
        if (first.Records is [var oldest] && last.Records is [var newest])
        {
            metadata.Add(new Element("start", Ns.Mam).SetAttr("id", oldest.StanzaId).SetAttr("timestamp", DateTimeProfile.Format(oldest.Stamp)));
            metadata.Add(new Element("end", Ns.Mam).SetAttr("id", newest.StanzaId).SetAttr("timestamp", DateTimeProfile.Format(newest.Stamp)));
        }
        c.Result(metadata);
    }
}
