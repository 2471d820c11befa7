using Microsoft.Extensions.Logging;
using Npgsql;

namespace Xmpp.Storage.Postgres;

// The schema is the server's own: created at first start and upgraded by the numbered migrations below, each applied
// once in its own transaction and recorded in schema_version. Nodes starting together take an advisory lock, so one
// applies a migration and the others find it done. A database whose schema is newer than this server knows was
// upgraded by a newer server, whose data this one could misread: it refuses to start.
//
// Text columns are COLLATE "C": byte order of UTF-8, which is ordinal order (the contracts' "ordinal") for everything
// outside the supplementary planes, and never merges "Alice" and "alice". Instants are UTC ticks (bigint): timestamptz
// keeps microseconds, and the archive contract round-trips a stamp to the tick.
internal static class PostgresSchema
{
    // The archives the server uses (the offline spool, XEP-0313 user archives, MUC room archives), made by the
    // migrations; any other gets its table when first opened.
    public static readonly IReadOnlySet<string> Collections = new HashSet<string>(StringComparer.Ordinal) { "offline", "mam", "muc" };

    // A migration appends here; the list index + 1 is its version, and a shipped one is never changed.
    private static readonly string[] Migrations =
    [
        // 1: every store of IStorage.
        """
        CREATE TABLE accounts (
            username text COLLATE "C" PRIMARY KEY,
            created bigint NOT NULL,
            last_logout bigint,
            last_status text,
            -- One entry per SCRAM hash, the arrays index by index (RFC 5802 §3: salted keys, never the password).
            scram_hash text[] NOT NULL,
            scram_salt bytea[] NOT NULL,
            scram_iterations int[] NOT NULL,
            scram_stored_key bytea[] NOT NULL,
            scram_server_key bytea[] NOT NULL);

        CREATE TABLE roster_items (
            username text COLLATE "C" NOT NULL,
            jid text COLLATE "C" NOT NULL,
            name text,
            groups text[] NOT NULL,
            subscription smallint NOT NULL,
            ask_out boolean NOT NULL,
            pending_in boolean NOT NULL,
            pre_approved boolean NOT NULL,
            in_roster boolean NOT NULL,
            pending_in_status text,
            PRIMARY KEY (username, jid));

        -- The XEP-0237 counter per user; kept when the roster is emptied, so a version is never repeated.
        CREATE TABLE roster_versions (
            username text COLLATE "C" PRIMARY KEY,
            version bigint NOT NULL);

        CREATE TABLE kv (
            owner text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            value bytea NOT NULL,
            PRIMARY KEY (owner, key));

        CREATE TABLE uploads (
            id text COLLATE "C" PRIMARY KEY,
            owner text COLLATE "C" NOT NULL,
            file_name text NOT NULL,
            content_type text NOT NULL,
            size bigint NOT NULL,
            created bigint NOT NULL);
        CREATE INDEX uploads_owner ON uploads (owner, created, id);
        CREATE INDEX uploads_created ON uploads (created, id);

        -- Every archive table (see ArchiveTable), so later migrations can change them all.
        CREATE TABLE archive_collections (name text PRIMARY KEY);

        -- Per archive and owner, the id through which records are deleted: DeleteThrough moves the mark (one row),
        -- queries hide what lies below it, and PostgresArchivePurger removes those rows later in the background, so
        -- delivering the offline spool never deletes row by row while the client waits. Purged says how far that went.
        CREATE TABLE archive_marks (
            collection text NOT NULL,
            owner text COLLATE "C" NOT NULL,
            through bigint NOT NULL,
            purged bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (collection, owner));
        CREATE INDEX archive_marks_unpurged ON archive_marks (collection) WHERE through > purged;
        """
        + ArchiveTable("offline") + ArchiveTable("mam") + ArchiveTable("muc"),

        // 2: the XEP-0359 origin-id of each archived message (the id its sender gave it, which a client names to
        // correct or retract its own message), indexed per owner like the stanza id. Rows stored before are filled
        // from their payloads once, here.
        """
        DO $$
        DECLARE c text;
        BEGIN
            FOR c IN SELECT name FROM archive_collections LOOP
                EXECUTE format($sql$
                    ALTER TABLE archive_%1$s ADD COLUMN IF NOT EXISTS origin_id text COLLATE "C";
                    UPDATE archive_%1$s
                       SET origin_id = substring(convert_from(payload, 'UTF8') from '<origin-id xmlns="urn:xmpp:sid:0"[^>]*? id="([^"]*)"')
                     WHERE position('<origin-id'::bytea in payload) > 0;
                    CREATE INDEX IF NOT EXISTS archive_%1$s_origin_id ON archive_%1$s (owner, origin_id, id) WHERE origin_id IS NOT NULL;
                    $sql$, c);
            END LOOP;
        END $$;
        """,

        // 3: the epoch of each MUC room's host in a cluster (issue 17): a host writes the room's state only while its
        // epoch is the one recorded here (IRoomFence), so a node that lost the room cannot overwrite the new host.
        """
        CREATE TABLE muc_room_epochs (room text COLLATE "C" PRIMARY KEY, epoch bigint NOT NULL);
        """,

        // 4: no per-peer ordinal. Finding each (owner, peer) pair's newest row before every insert (one index seek per
        // pair per group) cost 4-6 of 25-34 µs of the database's CPU per archived row under 1:1 traffic; a 'with'
        // query now counts its rows along the (owner, peer, id) index instead, which costs that query ~0.5 µs per row
        // counted (bench/results/2026-12-07-postgresql-archiving-v4.md). Dropping a column only changes the catalog:
        // existing rows keep their bytes, nothing is rewritten.
        """
        DO $$
        DECLARE c text;
        BEGIN
            FOR c IN SELECT name FROM archive_collections LOOP
                EXECUTE format('ALTER TABLE archive_%1$s DROP COLUMN IF EXISTS peer_ordinal', c);
            END LOOP;
        END $$;
        """,

        // 5: no (owner, stamp) index. Start and End are answered by a binary search of the primary key instead
        // (PostgresArchiveStore.FirstIdWhere: an owner's stamps never decrease in id order), so an archived row costs
        // one index insertion fewer (bench/results/2026-12-07-postgresql-archiving-s26.md). Dropping an index only
        // removes its file: the table is not rewritten.
        """
        DO $$
        DECLARE c text;
        BEGIN
            FOR c IN SELECT name FROM archive_collections LOOP
                EXECUTE format('DROP INDEX IF EXISTS archive_%1$s_stamp', c);
            END LOOP;
        END $$;
        """,
    ];

    public static int Version => Migrations.Length;

    // One table per archive collection (the name is checked by ArchiveCollectionName, so it is safe in SQL), ids from
    // its own sequence. The primary key (owner, id) serves the owner's pages in either direction; an owner's time
    // never runs backwards in id order, so Start/End are a range of it (found by (owner, stamp) until migration 5, by a
    // binary search of the primary key since); (owner, peer, id) serves
    // the 'with' filter (XEP-0313 §4.1.1), (owner, stanza_id) the XEP-0359 id lookups.
    //
    // Counting: ordinal numbers the owner's records 1, 2, 3... in id order (peer_ordinal, its records with that peer,
    // is dropped by migration 4). Records are only ever removed from the oldest end (the deletion mark), and a time
    // range is a run of ids, so every set a query without 'with' counts (XEP-0059 §2.6) is a run of consecutive
    // ordinals: its size is the last one's minus the first one's plus one, two index seeks instead of reading a
    // million index entries (~200 ms here).
    public static string ArchiveTable(string name) => $"""

        CREATE TABLE IF NOT EXISTS archive_{name} (
            owner text COLLATE "C" NOT NULL,
            id bigint NOT NULL,
            stamp bigint NOT NULL,
            peer text COLLATE "C" NOT NULL,
            stanza_id text COLLATE "C",
            payload bytea NOT NULL,
            ordinal bigint NOT NULL,
            peer_ordinal bigint NOT NULL,
            PRIMARY KEY (owner, id));
        CREATE INDEX IF NOT EXISTS archive_{name}_peer ON archive_{name} (owner, peer, id);
        CREATE INDEX IF NOT EXISTS archive_{name}_stamp ON archive_{name} (owner, stamp);
        CREATE INDEX IF NOT EXISTS archive_{name}_stanza_id ON archive_{name} (owner, stanza_id, id) WHERE stanza_id IS NOT NULL;
        CREATE SEQUENCE IF NOT EXISTS archive_{name}_ids;
        INSERT INTO archive_collections (name) VALUES ('{name}') ON CONFLICT DO NOTHING;
        """;

    // What migrations 2, 4 and 5 change in an archive table, for a collection whose table is made later (PostgresStorage.Archive).
    public static string LaterArchiveChanges(string name) => $"""

        ALTER TABLE archive_{name} ADD COLUMN IF NOT EXISTS origin_id text COLLATE "C";
        CREATE INDEX IF NOT EXISTS archive_{name}_origin_id ON archive_{name} (owner, origin_id, id) WHERE origin_id IS NOT NULL;
        ALTER TABLE archive_{name} DROP COLUMN IF EXISTS peer_ordinal;
        DROP INDEX IF EXISTS archive_{name}_stamp;
        """;

    // Any number to share between nodes of this server; "xmpp" in ASCII.
    private const long LockKey = 0x786d7070;

    /// The schema's advisory lock for DDL run in a transaction (released at its end).
    internal static readonly string LockStatement = $"SELECT pg_advisory_xact_lock({LockKey})";

    // Brings the schema up to Version (or upTo, which only tests ask for, to make an older server's database);
    // returns the version found before.
    public static async Task<int> MigrateAsync(NpgsqlDataSource source, ILogger logger, int? upTo = null)
    {
        var target = upTo ?? Version;
        await using var connection = await source.OpenConnectionAsync().ConfigureAwait(false);
        await Execute(connection, $"SELECT pg_advisory_lock({LockKey})").ConfigureAwait(false);
        try
        {
            await Execute(connection,
                "CREATE TABLE IF NOT EXISTS schema_version (version int PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())")
                .ConfigureAwait(false);
            var found = await ReadVersionAsync(connection).ConfigureAwait(false) ?? 0;
            if (found > Version)
                throw new StorageOpenException(
                    $"the PostgreSQL schema is at version {found}, newer than this server knows ({Version}): it was upgraded by a newer " +
                    "server. Run that version, or restore a backup taken before the upgrade.");
            for (var version = found + 1; version <= target; version++)
            {
                await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
                await Execute(connection, Migrations[version - 1]).ConfigureAwait(false);
                await Execute(connection, $"INSERT INTO schema_version (version) VALUES ({version})").ConfigureAwait(false);
                await transaction.CommitAsync().ConfigureAwait(false);
                logger.LogInformation("PostgreSQL schema migrated to version {Version}", version);
            }
            return found;
        }
        finally
        {
            await Execute(connection, $"SELECT pg_advisory_unlock({LockKey})").ConfigureAwait(false);
        }
    }

    // The schema's version, or null when the server never created it in this database.
    public static async Task<int?> ReadVersionAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand(
            "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN NULL ELSE -1 END", connection);
        if (await command.ExecuteScalarAsync().ConfigureAwait(false) is DBNull or null)
            return null;
        await using var max = new NpgsqlCommand("SELECT COALESCE(max(version), 0) FROM schema_version", connection);
        return Convert.ToInt32(await max.ExecuteScalarAsync().ConfigureAwait(false));
    }

    private static async Task Execute(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }
}
