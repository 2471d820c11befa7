using Npgsql;

namespace Xmpp.Storage.Postgres;

// IRoomFence on table muc_room_epochs (schema version 3). A fenced write runs in the writer's group transaction: it
// first reads the room's epoch row FOR SHARE, which waits for a claim in progress (the claim's UPDATE holds the row)
// and then sees the committed epoch, and writes only when that is the caller's. A claim after the check waits for the
// write's transaction, so no write with an old epoch can land after the new host's claim committed.
internal sealed class PostgresRoomFence(PostgresStorage storage, PostgresWriter writer) : IRoomFence
{
    private const string Check = "SELECT epoch FROM muc_room_epochs WHERE room = $1 FOR SHARE";

    public ValueTask<long> ClaimAsync(string room, long epoch) =>
        new(writer.Enqueue(async connection =>
        {
            await using var command = new NpgsqlCommand("""
                INSERT INTO muc_room_epochs (room, epoch) VALUES ($1, $2)
                ON CONFLICT (room) DO UPDATE SET epoch = EXCLUDED.epoch WHERE muc_room_epochs.epoch < EXCLUDED.epoch
                """, connection);
            command.Parameters.Add(Text(room));
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = epoch });
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            return await CurrentAsync(connection, room).ConfigureAwait(false) ?? epoch;
        }));

    public ValueTask<bool> SetAsync(string room, long epoch, string owner, string key, ReadOnlyMemory<byte> value)
    {
        var bytes = value.ToArray();
        return new(writer.Enqueue(async connection =>
        {
            if (await CurrentAsync(connection, room).ConfigureAwait(false) != epoch) return false;
            await using var command = new NpgsqlCommand(
                "INSERT INTO kv (owner, key, value) VALUES ($1, $2, $3) ON CONFLICT (owner, key) DO UPDATE SET value = EXCLUDED.value",
                connection);
            command.Parameters.Add(Text(owner));
            command.Parameters.Add(Text(key));
            command.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = bytes });
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            return true;
        }));
    }

    public ValueTask<bool> DeleteAsync(string room, long epoch, string owner, string key) =>
        new(writer.Enqueue(async connection =>
        {
            if (await CurrentAsync(connection, room).ConfigureAwait(false) != epoch) return false;
            await using var command = new NpgsqlCommand("DELETE FROM kv WHERE owner = $1 AND key = $2", connection);
            command.Parameters.Add(Text(owner));
            command.Parameters.Add(Text(key));
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            return true;
        }));

    public ValueTask<long?> AppendAsync(string room, long epoch, string collection, DateTimeOffset stamp, string with,
        ReadOnlyMemory<byte> payload, string? stanzaId)
    {
        var archive = (PostgresArchiveStore)storage.Archive(collection);
        // Made once, outside the write, so a group that runs again after a lost connection keeps the record's id.
        var append = new ArchiveAppend(archive, writer, room, stamp.UtcTicks, with, stanzaId, payload);
        return new(writer.Enqueue(new PostgresWrite<long?>(async connection =>
        {
            if (await CurrentAsync(connection, room).ConfigureAwait(false) != epoch) return null;
            await archive.InsertAsync(connection, [append]).ConfigureAwait(false);
            return append.Id;
        }, writer) { Archive = archive }));
    }

    public ValueTask<bool?> ReplaceArchiveAsync(string room, long epoch, string collection, string owner, long id, ReadOnlyMemory<byte> payload)
    {
        var archive = (PostgresArchiveStore)storage.Archive(collection);
        var bytes = payload.ToArray();
        return new(writer.Enqueue(new PostgresWrite<bool?>(async connection =>
        {
            if (await CurrentAsync(connection, room).ConfigureAwait(false) != epoch) return null;
            return await archive.ReplaceOnAsync(connection, owner, id, bytes).ConfigureAwait(false);
        }, writer) { Archive = archive }));
    }

    public ValueTask<bool> DeleteArchiveAsync(string room, long epoch, string collection, string owner)
    {
        var archive = (PostgresArchiveStore)storage.Archive(collection);
        return new(writer.Enqueue(new PostgresWrite<bool>(async connection =>
        {
            if (await CurrentAsync(connection, room).ConfigureAwait(false) != epoch) return false;
            await archive.DeleteAllOnAsync(connection, owner).ConfigureAwait(false);
            return true;
        }, writer) { Archive = archive }));
    }

    private static async ValueTask<long?> CurrentAsync(NpgsqlConnection connection, string room)
    {
        await using var command = new NpgsqlCommand(Check, connection);
        command.Parameters.Add(Text(room));
        return await command.ExecuteScalarAsync().ConfigureAwait(false) is long epoch ? epoch : null;
    }

    private static NpgsqlParameter<string> Text(string value) => new() { TypedValue = value };
}
