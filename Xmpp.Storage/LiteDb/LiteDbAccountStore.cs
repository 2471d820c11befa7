using LiteDB;

namespace Xmpp.Storage.LiteDb;

// Collection "accounts": one document per account, _id = username.
internal sealed class LiteDbAccountStore(LiteDbWriter writer) : IAccountStore
{
    private const string CollectionName = "accounts";

    public ValueTask<Account?> FindAsync(string username)
    {
        return writer.ReadAsync(db => db.GetCollection(CollectionName).FindById(username) is { } document ? FromDocument(document) : null);
    }

    public ValueTask<bool> CreateAsync(Account account)
    {
        var document = ToDocument(account);
        return new(writer.Enqueue(db =>
        {
            var accounts = db.GetCollection(CollectionName);
            // Checked rather than caught: a duplicate-key exception would roll back the whole group transaction.
            if (accounts.FindById(account.Username) is not null)
                return false;
            accounts.Insert(document);
            return true;
        }));
    }

    public ValueTask UpdateAsync(Account account)
    {
        var document = ToDocument(account);
        return new(writer.Enqueue(db => db.GetCollection(CollectionName).Update(document)));
    }

    // Read and written inside the writer's transaction, so nothing another write changed in between is put back.
    public ValueTask RecordLogoutAsync(string username, DateTimeOffset at, string? status)
    {
        var logout = LiteDbKeys.Ticks(at);
        return new(writer.Enqueue(db =>
        {
            var accounts = db.GetCollection(CollectionName);
            if (accounts.FindById(username) is not { } document) return false;
            document["lastLogout"] = logout;
            document["lastStatus"] = status is null ? BsonValue.Null : new BsonValue(status);
            return accounts.Update(document);
        }));
    }

    public ValueTask<bool> DeleteAsync(string username) =>
        new(writer.Enqueue(db => db.GetCollection(CollectionName).Delete(username)));

    public ValueTask<IReadOnlyList<string>> ListAsync()
    {
        // The primary key index is ordered by the database's ordinal collation.
        return writer.ReadAsync<IReadOnlyList<string>>(db => db.GetCollection(CollectionName)
            .Query().OrderBy("_id").Select("_id").ToEnumerable()
            .Select(d => d["_id"].AsString).ToArray());
    }

    public ValueTask<int> CountAsync() => writer.ReadAsync(db => db.GetCollection(CollectionName).Count());

    private static BsonDocument ToDocument(Account account)
    {
        var credentials = new BsonArray();
        foreach (var keys in account.Credentials)
        {
            credentials.Add(new BsonDocument
            {
                ["hash"] = keys.Hash,
                ["salt"] = keys.Salt.ToArray(),
                ["iterations"] = keys.Iterations,
                ["storedKey"] = keys.StoredKey.ToArray(),
                ["serverKey"] = keys.ServerKey.ToArray(),
            });
        }
        return new BsonDocument
        {
            ["_id"] = account.Username,
            ["credentials"] = credentials,
            ["created"] = LiteDbKeys.Ticks(account.Created),
            ["lastLogout"] = account.LastLogout is { } logout ? LiteDbKeys.Ticks(logout) : BsonValue.Null,
            ["lastStatus"] = account.LastStatus is { } status ? new BsonValue(status) : BsonValue.Null,
        };
    }

    private static Account FromDocument(BsonDocument document)
    {
        var credentials = document["credentials"].AsArray
            .Select(k => new ScramKeys(
                k["hash"].AsString, k["salt"].AsBinary, k["iterations"].AsInt32, k["storedKey"].AsBinary, k["serverKey"].AsBinary))
            .ToArray();
        var logout = document["lastLogout"];
        var status = document["lastStatus"];
        return new Account(
            document["_id"].AsString,
            credentials,
            LiteDbKeys.Stamp(document["created"]),
            logout.IsNull ? null : LiteDbKeys.Stamp(logout),
            status.IsNull ? null : status.AsString);
    }
}
