using System.Globalization;
using LiteDB;

namespace Xmpp.Storage.LiteDb;

// LiteDB has no compound indexes, so compound keys are strings: the parts joined by U+0001, which RFC 7622 forbids in
// JIDs and usernames, with numbers zero-padded so that the database's ordinal collation orders them numerically.
// All the keys of one owner then form one contiguous index range.
internal static class LiteDbKeys
{
    public const char Separator = '\u0001';

    public static string Prefix(string owner)
    {
        if (owner.Contains(Separator))
            throw new ArgumentException("An owner may not contain U+0001.", nameof(owner));
        return owner + Separator;
    }

    public static string Number(long value) => value.ToString("D19", CultureInfo.InvariantCulture);

    // Every key that starts with prefix (which ends with the separator).
    public static BsonExpression StartsWith(string field, string prefix) =>
        Query.Between(field, prefix, prefix[..^1] + (char)(Separator + 1));

    public static BsonValue Ticks(DateTimeOffset value) => new BsonValue(value.UtcTicks);

    public static DateTimeOffset Stamp(BsonValue ticks) => new(ticks.AsInt64, TimeSpan.Zero);
}
