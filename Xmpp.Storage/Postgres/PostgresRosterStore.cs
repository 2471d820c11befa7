using System.Globalization;
using Npgsql;

namespace Xmpp.Storage.Postgres;

// Tables roster_items (one row per user and contact) and roster_versions (the XEP-0237 counter). Each change and its
// version bump are one statement, so the version a caller gets back is the one its change was stored under.
internal sealed class PostgresRosterStore(NpgsqlDataSource source, PostgresWriter writer) : IRosterStore
{
    private const string Columns = "jid, name, groups, subscription, ask_out, pending_in, pre_approved, in_roster, pending_in_status";

    // Bumps the counter of the user given as $1 (created at 1) and returns it.
    private const string Bump = """
        INSERT INTO roster_versions AS v (username, version) SELECT $1, 1 {0}
        ON CONFLICT (username) DO UPDATE SET version = v.version + 1
        RETURNING v.version
        """;

    // One statement reads one snapshot, so the items and the version always belong together.
    public async ValueTask<RosterSnapshot> GetAsync(string user)
    {
        await using var command = source.CreateCommand($"""
            SELECT COALESCE((SELECT version FROM roster_versions WHERE username = $1), 0), i.*
            FROM (SELECT 1) one
            LEFT JOIN LATERAL (SELECT {Columns} FROM roster_items WHERE username = $1 ORDER BY jid) i ON true
            """);
        command.Parameters.Add(Text(user));
        await using var reader = await writer.Health.ReaderAsync(command).ConfigureAwait(false);
        long version = 0;
        var items = new List<RosterItem>();
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            version = reader.GetInt64(0);
            if (!reader.IsDBNull(1))
                items.Add(Read(reader, 1));
        }
        return new RosterSnapshot(Render(version), items);
    }

    public async ValueTask<RosterItem?> GetItemAsync(string user, string jid)
    {
        await using var command = source.CreateCommand($"SELECT {Columns} FROM roster_items WHERE username = $1 AND jid = $2");
        command.Parameters.Add(Text(user));
        command.Parameters.Add(Text(jid));
        await using var reader = await writer.Health.ReaderAsync(command).ConfigureAwait(false);
        return await reader.ReadAsync().ConfigureAwait(false) ? Read(reader, 0) : null;
    }

    public ValueTask<string> SetItemAsync(string user, RosterItem item) =>
        new(writer.Enqueue(connection => UpsertAsync(connection, user, item)));

    public ValueTask<string?> RemoveItemAsync(string user, string jid) =>
        new(writer.Enqueue(connection => RemoveAsync(connection, user, jid)));

    // In the writer's transaction, under a transaction-scoped advisory lock on (user, jid): a change made through another
    // node waits for this one's group to commit and then reads its result (see IRosterStore.ChangeItemAsync).
    public ValueTask<(RosterItem? Before, RosterItem? After, string? Version)> ChangeItemAsync(string user, string jid,
        Func<RosterItem?, RosterItem?> change) =>
        new(writer.Enqueue(async connection =>
        {
            await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('roster/' || $1 || '/' || $2, 0))", connection))
            {
                lockCommand.Parameters.Add(Text(user));
                lockCommand.Parameters.Add(Text(jid));
                await lockCommand.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
            RosterItem? before;
            await using (var read = new NpgsqlCommand($"SELECT {Columns} FROM roster_items WHERE username = $1 AND jid = $2", connection))
            {
                read.Parameters.Add(Text(user));
                read.Parameters.Add(Text(jid));
                await using var reader = await read.ExecuteReaderAsync().ConfigureAwait(false);
                before = await reader.ReadAsync().ConfigureAwait(false) ? Read(reader, 0) : null;
            }
            var after = change(before);
            if (ReferenceEquals(before, after)) return (before, before, (string?)null);
            var version = after is null ? await RemoveAsync(connection, user, jid).ConfigureAwait(false)
                : await UpsertAsync(connection, user, after).ConfigureAwait(false);
            return (before, after, version);
        }));

    private static async ValueTask<string> UpsertAsync(NpgsqlConnection connection, string user, RosterItem item)
    {
        var groups = item.Groups.ToArray();
        await using var command = new NpgsqlCommand($"""
            WITH item AS (
                INSERT INTO roster_items (username, {Columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (username, jid) DO UPDATE SET name = EXCLUDED.name, groups = EXCLUDED.groups,
                    subscription = EXCLUDED.subscription, ask_out = EXCLUDED.ask_out, pending_in = EXCLUDED.pending_in,
                    pre_approved = EXCLUDED.pre_approved, in_roster = EXCLUDED.in_roster, pending_in_status = EXCLUDED.pending_in_status)
            {string.Format(CultureInfo.InvariantCulture, Bump, "")}
            """, connection);
        command.Parameters.Add(Text(user));
        command.Parameters.Add(Text(item.Jid));
        command.Parameters.Add(new NpgsqlParameter<string?> { TypedValue = item.Name });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = groups });
        command.Parameters.Add(new NpgsqlParameter<short> { TypedValue = (short)item.Subscription });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = item.AskOut });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = item.PendingIn });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = item.PreApproved });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = item.InRoster });
        command.Parameters.Add(new NpgsqlParameter<string?> { TypedValue = item.PendingInStatus });
        return Render((long)(await command.ExecuteScalarAsync().ConfigureAwait(false))!);
    }

    private static async ValueTask<string?> RemoveAsync(NpgsqlConnection connection, string user, string jid)
    {
        await using var command = new NpgsqlCommand($"""
            WITH gone AS (DELETE FROM roster_items WHERE username = $1 AND jid = $2 RETURNING 1)
            {string.Format(CultureInfo.InvariantCulture, Bump, "FROM gone")}
            """, connection);
        command.Parameters.Add(Text(user));
        command.Parameters.Add(Text(jid));
        return await command.ExecuteScalarAsync().ConfigureAwait(false) is long version ? Render(version) : null;
    }

    // The counter is kept and bumped (see IRosterStore) so a recreated account never repeats an old version.
    public ValueTask DeleteAllAsync(string user) =>
        new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand($"""
                WITH gone AS (DELETE FROM roster_items WHERE username = $1)
                {string.Format(CultureInfo.InvariantCulture, Bump, "")}
                """, connection);
            command.Parameters.Add(Text(user));
            return await command.ExecuteScalarAsync().ConfigureAwait(false);
        }));

    private static RosterItem Read(NpgsqlDataReader reader, int first) => new(
        reader.GetString(first),
        reader.IsDBNull(first + 1) ? null : reader.GetString(first + 1),
        reader.GetFieldValue<string[]>(first + 2),
        (Subscription)reader.GetInt16(first + 3),
        reader.GetBoolean(first + 4),
        reader.GetBoolean(first + 5),
        reader.GetBoolean(first + 6),
        reader.GetBoolean(first + 7),
        reader.IsDBNull(first + 8) ? null : reader.GetString(first + 8));

    private static string Render(long version) => version.ToString(CultureInfo.InvariantCulture);

    private static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value };
}
