using System.Globalization;
using LiteDB;

namespace Xmpp.Storage.LiteDb;

// Collection "roster": _id = user U+0001 contact JID (the (user, jid) index is the primary key);
// collection "roster_versions": _id = user, version = the XEP-0237 counter.
internal sealed class LiteDbRosterStore(LiteDbWriter writer) : IRosterStore
{
    private const string ItemsName = "roster";
    private const string VersionsName = "roster_versions";

    public ValueTask<RosterSnapshot> GetAsync(string user)
    {
        var range = LiteDbKeys.StartsWith("_id", LiteDbKeys.Prefix(user));
        // Without a read transaction the items and the version are two reads; every change bumps the version, so
        // reading the same version before and after proves no change slipped in between.
        return writer.ReadAsync(db =>
        {
            while (true)
            {
                var before = ReadVersion(db, user);
                var items = db.GetCollection(ItemsName).Find(range).Select(FromDocument).ToArray();
                if (ReadVersion(db, user) == before)
                    return new RosterSnapshot(Render(before), items);
            }
        });
    }

    public ValueTask<RosterItem?> GetItemAsync(string user, string jid)
    {
        return writer.ReadAsync(db => db.GetCollection(ItemsName).FindById(LiteDbKeys.Prefix(user) + jid) is { } document ? FromDocument(document) : null);
    }

    public ValueTask<string> SetItemAsync(string user, RosterItem item)
    {
        var document = ToDocument(user, item);
        return new(writer.Enqueue(db =>
        {
            db.GetCollection(ItemsName).Upsert(document);
            return Render(Bump(db, user));
        }));
    }

    public ValueTask<string?> RemoveItemAsync(string user, string jid)
    {
        var id = LiteDbKeys.Prefix(user) + jid;
        return new(writer.Enqueue(db =>
            db.GetCollection(ItemsName).Delete(id) ? Render(Bump(db, user)) : null));
    }

    public ValueTask DeleteAllAsync(string user)
    {
        var range = LiteDbKeys.StartsWith("_id", LiteDbKeys.Prefix(user));
        return new(writer.Enqueue(db =>
        {
            db.GetCollection(ItemsName).DeleteMany(range);
            // The counter is kept (see IRosterStore) so a recreated account never repeats an old version.
            return Bump(db, user);
        }));
    }

    private static long ReadVersion(LiteDatabase db, string user) =>
        db.GetCollection(VersionsName).FindById(user)?["version"].AsInt64 ?? 0;

    private static long Bump(LiteDatabase db, string user)
    {
        var version = ReadVersion(db, user) + 1;
        db.GetCollection(VersionsName).Upsert(new BsonDocument { ["_id"] = user, ["version"] = version });
        return version;
    }

    private static string Render(long version) => version.ToString(CultureInfo.InvariantCulture);

    private static BsonDocument ToDocument(string user, RosterItem item) => new()
    {
        ["_id"] = LiteDbKeys.Prefix(user) + item.Jid,
        ["jid"] = item.Jid,
        ["name"] = item.Name is { } name ? new BsonValue(name) : BsonValue.Null,
        ["groups"] = new BsonArray(item.Groups.Select(g => new BsonValue(g))),
        ["subscription"] = (int)item.Subscription,
        ["askOut"] = item.AskOut,
        ["pendingIn"] = item.PendingIn,
        ["preApproved"] = item.PreApproved,
        ["inRoster"] = item.InRoster,
        ["pendingInStatus"] = item.PendingInStatus is { } status ? new BsonValue(status) : BsonValue.Null,
    };

    private static RosterItem FromDocument(BsonDocument document)
    {
        var name = document["name"];
        var status = document["pendingInStatus"];
        return new RosterItem(
            document["jid"].AsString,
            name.IsNull ? null : name.AsString,
            document["groups"].AsArray.Select(g => g.AsString).ToArray(),
            (Subscription)document["subscription"].AsInt32,
            document["askOut"].AsBoolean,
            document["pendingIn"].AsBoolean,
            document["preApproved"].AsBoolean,
            document["inRoster"].AsBoolean,
            status.IsNull ? null : status.AsString);
    }
}
