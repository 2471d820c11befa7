using Npgsql;
using NpgsqlTypes;

namespace Xmpp.Storage.Postgres;

// One archive collection in table archive_<name> (see PostgresSchema.ArchiveTable). Appends are queued and inserted
// a group at a time (InsertAsync); deletions move the owner's mark in archive_marks and leave the rows to
// PostgresArchivePurger; every read hides what lies at or below the mark.
internal sealed partial class PostgresArchiveStore : IArchiveStore
{
    private readonly NpgsqlDataSource _source;
    private readonly PostgresWriter _writer;
    private readonly string _name;
    private readonly string _table;
    private readonly string _mark;
    private readonly string _insert;
    private readonly string _firstInsert;

    public PostgresArchiveStore(NpgsqlDataSource source, PostgresWriter writer, string name)
    {
        _source = source;
        _writer = writer;
        _name = name;
        _table = "archive_" + name;
        // The owner's deletion mark, for an owner given as $1.
        _mark = $"COALESCE((SELECT through FROM archive_marks WHERE collection = '{name}' AND owner = $1), 0)";
        // Time never runs backwards within an owner's archive (see IArchiveStore): each row's stamp is raised to the
        // latest stamp before it, among the owner's stored rows (the newest one, found by one seek of the primary key)
        // and the rows of this insert. The ordinals continue from the owner's newest row (PostgresSchema.ArchiveTable).
        // The newest row is looked up once per owner of the group, not once per row
        // (MATERIALIZED keeps the planner from folding the lookup back into the row loop): a third less time per
        // group of 4,096 appends of 200 owners (bench/results/2026-12-07-quick-postgresql.md).
        const string rows = """
            SELECT v.owner, v.id,
                   GREATEST(max(v.stamp) OVER (PARTITION BY v.owner ORDER BY v.id), COALESCE(n.newest, v.stamp)),
                   v.peer, v.stanza_id, v.origin_id, v.payload,
                   COALESCE(n.ordinal, 0) + row_number() OVER (PARTITION BY v.owner ORDER BY v.id)
            FROM v JOIN n ON n.owner = v.owner
            """;
        var newest = $"""
                 n AS MATERIALIZED (
                     SELECT o.owner, l.newest, l.ordinal FROM (SELECT DISTINCT owner FROM v) o
                     LEFT JOIN LATERAL (SELECT a.stamp AS newest, a.ordinal FROM {_table} a WHERE a.owner = o.owner ORDER BY a.id DESC LIMIT 1) l ON true)
            """;
        var columns = $"INSERT INTO {_table} (owner, id, stamp, peer, stanza_id, origin_id, payload, ordinal)";
        // ON CONFLICT makes a group that is run again after a lost commit answer harmless: its appends keep the ids
        // they were given the first time.
        _insert = $"""
            WITH v AS MATERIALIZED (
                     SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bytea[], $7::text[])
                          AS v(owner, id, stamp, peer, stanza_id, payload, origin_id)),
            {newest}
            {columns}
            {rows}
            ON CONFLICT (owner, id) DO NOTHING
            """;
        // Appends never tried before take their ids in the same statement, in queue order, and get them back from it:
        // one round trip per group instead of two (allocating, then inserting). They go in without the conflict check,
        // whose speculative insertion costs a probe of the primary key per row: these ids are new. The ids are known
        // before the commit is sent, so a commit whose answer is lost runs again as _insert.
        _firstInsert = $"""
            WITH ids AS MATERIALIZED (
                     SELECT array_agg(x ORDER BY x) AS ids
                     FROM (SELECT nextval('{_table}_ids') AS x FROM generate_series(1, cardinality($1::text[]))) g),
                 v AS MATERIALIZED (
                     SELECT u.owner, ids.ids[u.i] AS id, u.stamp, u.peer, u.stanza_id, u.payload, u.origin_id
                     FROM ids, unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bytea[], $6::text[])
                          WITH ORDINALITY AS u(owner, stamp, peer, stanza_id, payload, origin_id, i)),
            {newest},
                 inserted AS ({columns}
            {rows})
            SELECT ids FROM ids
            """;
    }

    // How many of the owner's records match filter (SQL over "a", the owner as $1). Without a peer: the ordinal of
    // the last minus that of the first plus one (see PostgresSchema.ArchiveTable), or 0 when none matches. With one
    // (byPeer): the matching entries of the (owner, peer, id) index, counted, as there is no per-peer ordinal
    // (migration 4 traded it for cheaper appends).
    internal string CountSql(string filter, bool byPeer) => byPeer
        ? $"SELECT count(*) FROM {_table} a WHERE {filter}"
        : $"""
            SELECT COALESCE((SELECT a.ordinal FROM {_table} a WHERE {filter} ORDER BY a.id DESC LIMIT 1)
                          - (SELECT a.ordinal FROM {_table} a WHERE {filter} ORDER BY a.id LIMIT 1) + 1, 0)
            """;

    public string Name => _name;

    public ValueTask<long> AppendAsync(string owner, DateTimeOffset stamp, string with, ReadOnlyMemory<byte> payload, string? stanzaId = null)
    {
        ArgumentNullException.ThrowIfNull(owner);
        ArgumentNullException.ThrowIfNull(with);
        return new(_writer.Enqueue(new ArchiveAppend(this, _writer, owner, stamp.UtcTicks, with, stanzaId, payload)));
    }

    // Writer only: stores a run of appends with one multi-row insert. Ids are given once, so a run that is inserted
    // again (after a lost connection or a refused write of its group) keeps them.
    internal async ValueTask InsertAsync(NpgsqlConnection connection, List<ArchiveAppend> run)
    {
        var fresh = true;
        foreach (var append in run)
            if (append.Id != 0) { fresh = false; break; }
        if (fresh)
        {
            await FirstInsertAsync(connection, run).ConfigureAwait(false);
            return;
        }
        var missing = 0;
        foreach (var append in run)
            if (append.Id == 0) missing++;
        if (missing > 0)
        {
            await using var allocate = new NpgsqlCommand($"SELECT nextval('{_table}_ids') FROM generate_series(1, $1)", connection);
            allocate.Parameters.Add(new NpgsqlParameter<int> { TypedValue = missing });
            var ids = new List<long>(missing);
            await using (var reader = await allocate.ExecuteReaderAsync().ConfigureAwait(false))
                while (await reader.ReadAsync().ConfigureAwait(false))
                    ids.Add(reader.GetInt64(0));
            ids.Sort();
            var next = 0;
            foreach (var append in run)
                if (append.Id == 0)
                    append.Id = ids[next++];
        }
        await using var insert = InsertCommand(_insert, connection, run, withIds: true);
        foreach (var append in run) append.SetResult(append.Id);
        await insert.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    // Appends never tried: the ids come back from the insert itself (_firstInsert), in run order.
    private async ValueTask FirstInsertAsync(NpgsqlConnection connection, List<ArchiveAppend> run)
    {
        await using var insert = InsertCommand(_firstInsert, connection, run, withIds: false);
        var ids = (long[])(await insert.ExecuteScalarAsync().ConfigureAwait(false))!;
        for (var i = 0; i < run.Count; i++)
        {
            run[i].Id = ids[i];
            run[i].SetResult(ids[i]);
        }
    }

    // The run as one array per column, in the parameter order of _insert (with the ids) or _firstInsert (without).
    private static NpgsqlCommand InsertCommand(string sql, NpgsqlConnection connection, List<ArchiveAppend> run, bool withIds)
    {
        var owners = new string[run.Count];
        var idValues = new long[run.Count];
        var stamps = new long[run.Count];
        var peers = new string[run.Count];
        var stanzaIds = new string?[run.Count];
        var payloads = new byte[run.Count][];
        var originIds = new string?[run.Count];
        for (var i = 0; i < run.Count; i++)
        {
            var a = run[i];
            (owners[i], idValues[i], stamps[i], peers[i], stanzaIds[i], payloads[i]) = (a.Owner, a.Id, a.Stamp, a.With, a.StanzaId, a.Payload);
            originIds[i] = OriginIds.Find(a.Payload);
        }
        var insert = new NpgsqlCommand(sql, connection);
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = owners });
        if (withIds) insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = idValues });
        insert.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = stamps });
        insert.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = peers });
        insert.Parameters.Add(new NpgsqlParameter { Value = stanzaIds, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        insert.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = payloads });
        insert.Parameters.Add(new NpgsqlParameter { Value = originIds, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        return insert;
    }

    public ValueTask<bool> ReplaceAsync(string owner, long id, ReadOnlyMemory<byte> payload)
    {
        var bytes = payload.ToArray();
        return new(_writer.Enqueue(new PostgresWrite<bool>(connection => ReplaceOnAsync(connection, owner, id, bytes), _writer) { Archive = this }));
    }

    /// The replacement inside a write the caller runs (PostgresRoomFence's fenced one).
    internal async ValueTask<bool> ReplaceOnAsync(NpgsqlConnection connection, string owner, long id, byte[] bytes)
    {
        await using var command = new NpgsqlCommand(
            $"UPDATE {_table} SET payload = $3 WHERE owner = $1 AND id = $2 AND id > {_mark}", connection);
        command.Parameters.Add(Text(owner));
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = id });
        command.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = bytes });
        return await command.ExecuteNonQueryAsync().ConfigureAwait(false) > 0;
    }

    // Moves the mark; the count is of the owner's records between the old mark and the new one, read in the same
    // statement (one snapshot) as the update.
    public ValueTask<int> DeleteThroughAsync(string owner, long id)
    {
        if (id < 1)
            return ValueTask.FromResult(0);
        return new(_writer.Enqueue(new PostgresWrite<int>(connection => MoveMarkAsync(connection, owner, id), _writer) { Archive = this }));
    }

    // Everything the owner has is below its newest id (appends held for this archive are inserted before this runs).
    public ValueTask DeleteAllAsync(string owner) =>
        new(_writer.Enqueue(new PostgresWrite<int>(connection => MoveMarkAsync(connection, owner, null), _writer) { Archive = this }));

    // IRoomFence: DeleteAllAsync run inside a write that has checked the room's epoch.
    internal ValueTask<int> DeleteAllOnAsync(NpgsqlConnection connection, string owner) => MoveMarkAsync(connection, owner, null);

    private async ValueTask<int> MoveMarkAsync(NpgsqlConnection connection, string owner, long? through)
    {
        var target = through is null ? $"(SELECT COALESCE(max(id), 0) FROM {_table} WHERE owner = $1)" : "$2";
        var doomed = CountSql($"a.owner = $1 AND a.id > (SELECT through FROM old) AND a.id <= {target}", byPeer: false);
        await using var command = new NpgsqlCommand($"""
            WITH old AS (SELECT {_mark} AS through),
                 doomed AS ({doomed}),
                 moved AS (INSERT INTO archive_marks (collection, owner, through) VALUES ('{_name}', $1, {target})
                           ON CONFLICT (collection, owner) DO UPDATE SET through = GREATEST(archive_marks.through, EXCLUDED.through))
            SELECT * FROM doomed
            """, connection);
        command.Parameters.Add(Text(owner));
        if (through is { } value)
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = value });
        return (int)(long)(await command.ExecuteScalarAsync().ConfigureAwait(false))!;
    }

    internal static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value };
}

// A queued append: the writer gathers a run of them into one insert (PostgresArchiveStore.InsertAsync).
internal sealed class ArchiveAppend : PostgresWrite<long>
{
    public ArchiveAppend(PostgresArchiveStore store, PostgresWriter writer, string owner, long stamp, string with, string? stanzaId,
        ReadOnlyMemory<byte> payload)
        : base(null, writer)
    {
        Store = store;
        Archive = store;
        Owner = owner;
        Stamp = stamp;
        With = with;
        StanzaId = stanzaId;
        // The payload is handed over (IArchiveStore): a whole array is kept as it is, a slice is copied.
        Payload = System.Runtime.InteropServices.MemoryMarshal.TryGetArray(payload, out var segment)
                  && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : payload.ToArray();
    }

    public PostgresArchiveStore Store { get; }

    public string Owner { get; }

    public long Stamp { get; }

    public string With { get; }

    public string? StanzaId { get; }

    public byte[] Payload { get; }

    // Given at the first insert attempt and kept (0 until then).
    public long Id { get; set; }

    public override async ValueTask ExecuteAsync(NpgsqlConnection connection) => await Store.InsertAsync(connection, [this]).ConfigureAwait(false);
}
