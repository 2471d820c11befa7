using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Routing;

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
        var owner = c.From.Local!;
        await _queued.WaitAsync(owner);
        var (store, refusal, why) = await MamArchiveReader.ToStoreQueryAsync(_archive, owner, query, query.With?.ToString(), Options);
        if (store is null)
        {
            c.Error(refusal, why);
            return;
        }
        var page = await _archive.QueryAsync(store);
        var (messages, fin) = MamArchiveReader.Results(query, page, c.From.Bare.ToString(), c.From.ToString());
        foreach (var message in messages) Deliver(c, message);
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
        c.Result(await MamArchiveReader.MetadataAsync(_archive, owner));
    }
}
