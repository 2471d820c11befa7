using System.Text;
using Npgsql;
using NpgsqlTypes;

namespace Xmpp.Storage.Postgres;

internal sealed partial class PostgresArchiveStore
{
    // The page and the count of the whole filtered set (XEP-0059 §2.6, which the RSM cursors do not narrow) go to the
    // server in one batch: one round trip, one connection. The page reads Max + 1 rows from the window's near end (the
    // extra one says whether it is complete) along the primary key or the (owner, peer, id) index.
    public async ValueTask<ArchivePage> QueryAsync(ArchiveQuery query)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(query.Max);
        var filter = new StringBuilder($"a.owner = $1 AND a.id > {_mark}");
        var parameters = new List<NpgsqlParameter> { Text(query.Owner) };
        string Add(NpgsqlParameter parameter)
        {
            parameters.Add(parameter);
            return "$" + parameters.Count;
        }
        if (query.With is { } with) filter.Append(" AND a.peer = ").Append(Add(Text(with)));
        // A time bound is an id bound (IArchiveStore: id order is time order within an owner's archive).
        if (query.Start is { } start)
            filter.Append(" AND a.id >= ").Append(FirstIdWhere(">= " + Add(new NpgsqlParameter<long> { TypedValue = start.UtcTicks })));
        if (query.End is { } end)
            filter.Append(" AND a.id < ").Append(FirstIdWhere("> " + Add(new NpgsqlParameter<long> { TypedValue = end.UtcTicks })));
        if (query.StanzaIds is { } stanzaIds)
            filter.Append(" AND a.stanza_id = ANY(").Append(Add(new NpgsqlParameter<string[]> { TypedValue = [.. stanzaIds] })).Append(')');
        var window = new StringBuilder().Append(filter);
        if (query.AfterId is { } after) window.Append(" AND a.id > ").Append(Add(new NpgsqlParameter<long> { TypedValue = after }));
        if (query.BeforeId is { } before) window.Append(" AND a.id < ").Append(Add(new NpgsqlParameter<long> { TypedValue = before }));

        await using var connection = await _writer.Health.OpenAsync(_source).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection);
        var page = new NpgsqlBatchCommand($"""
            SELECT a.id, a.stamp, a.peer, a.stanza_id, a.payload FROM {_table} a WHERE {window}
            ORDER BY a.id {(query.Reverse ? "DESC" : "ASC")} LIMIT {query.Max + 1}
            """);
        // Ids named in the query ('ids', XEP-0313 §4.1.1) are few and not a run: those are counted row by row.
        var count = new NpgsqlBatchCommand(query.StanzaIds is null
            ? CountSql(filter.ToString(), byPeer: query.With is not null)
            : $"SELECT count(*) FROM {_table} a WHERE {filter}");
        // A parameter belongs to one command: the count gets copies of the ones its filter uses (the first ones).
        var filterParameters = parameters.Count - (query.AfterId is null ? 0 : 1) - (query.BeforeId is null ? 0 : 1);
        foreach (var parameter in parameters)
            page.Parameters.Add(parameter);
        for (var i = 0; i < filterParameters; i++)
            count.Parameters.Add(parameters[i].Clone());
        batch.BatchCommands.Add(page);
        batch.BatchCommands.Add(count);

        var records = new List<ArchiveRecord>();
        int total;
        await using (var reader = await batch.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false))
                records.Add(new ArchiveRecord(reader.GetInt64(0), query.Owner, new DateTimeOffset(reader.GetInt64(1), TimeSpan.Zero),
                    reader.GetString(2), (byte[])reader[4], reader.IsDBNull(3) ? null : reader.GetString(3)));
            await reader.NextResultAsync().ConfigureAwait(false);
            await reader.ReadAsync().ConfigureAwait(false);
            total = (int)reader.GetInt64(0);
        }
        var complete = records.Count <= query.Max;
        if (!complete) records.RemoveAt(records.Count - 1);
        if (query.Reverse) records.Reverse();
        return new ArchivePage(records, complete, total);
    }

    // The smallest id from which every record of the owner ($1) has a stamp that is `comparison` (">= $n" or "> $n"),
    // or the owner's newest id plus one: a binary search over the primary key, which is valid because an owner's stamps
    // never decrease in id order (the insert raises them). It answers Start and End without an index of its own on
    // (owner, stamp), which cost every archived row an index insertion (dropped by migration 5). Each step is one seek of
    // the primary key and halves [lo, hi): rows below lo fail the comparison, every row from hi on passes it. A probe
    // in the upper half that passes (or finds none) moves hi to the half's start, as no row lies between them; one that
    // fails moves lo past it. At most 64 steps for bigint ids, about 30 for a billion rows: well under a millisecond.
    internal string FirstIdWhere(string comparison) => $"""
        (WITH RECURSIVE s(lo, hi) AS (
             SELECT 0::bigint, COALESCE((SELECT b.id FROM {_table} b WHERE b.owner = $1 ORDER BY b.id DESC LIMIT 1), 0) + 1
             UNION ALL
             SELECT CASE WHEN p.stamp {comparison} OR p.id IS NULL THEN s.lo ELSE p.id + 1 END,
                    CASE WHEN p.stamp {comparison} OR p.id IS NULL THEN s.lo + (s.hi - s.lo) / 2 ELSE s.hi END
             FROM s LEFT JOIN LATERAL (
                 SELECT b.id, b.stamp FROM {_table} b
                 WHERE b.owner = $1 AND b.id >= s.lo + (s.hi - s.lo) / 2 AND b.id < s.hi ORDER BY b.id LIMIT 1) p ON true
             WHERE s.lo < s.hi)
         SELECT min(s.hi) FROM s)
        """;

    // The newest of the owner's records with that stanza id, as the embedded archive log answers.
    public async ValueTask<long?> FindIdAsync(string owner, string stanzaId)
    {
        // PostgreSQL text cannot hold U+0000, so no record can have such an id.
        if (stanzaId.Contains('\0')) return null;
        await using var command = _source.CreateCommand(
            $"SELECT a.id FROM {_table} a WHERE a.owner = $1 AND a.stanza_id = $2 AND a.id > {_mark} ORDER BY a.id DESC LIMIT 1");
        command.Parameters.Add(Text(owner));
        command.Parameters.Add(Text(stanzaId));
        return await _writer.Health.ScalarAsync(command).ConfigureAwait(false) is long id ? id : null;
    }

    // The newest of the owner's records whose message carries that XEP-0359 origin-id (see OriginIds), by the
    // (owner, origin_id, id) index.
    internal async ValueTask<long?> FindIdByOriginIdAsync(string owner, string originId)
    {
        if (originId.Contains('\0')) return null;
        await using var command = _source.CreateCommand(
            $"SELECT a.id FROM {_table} a WHERE a.owner = $1 AND a.origin_id = $2 AND a.id > {_mark} ORDER BY a.id DESC LIMIT 1");
        command.Parameters.Add(Text(owner));
        command.Parameters.Add(Text(originId));
        return await _writer.Health.ScalarAsync(command).ConfigureAwait(false) is long id ? id : null;
    }

    public async ValueTask<int> CountAsync(string owner)
    {
        await using var command = _source.CreateCommand(CountSql($"a.owner = $1 AND a.id > {_mark}", byPeer: false));
        command.Parameters.Add(Text(owner));
        return (int)(long)(await _writer.Health.ScalarAsync(command).ConfigureAwait(false))!;
    }
}
