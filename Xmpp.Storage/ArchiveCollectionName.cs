using System.Text.RegularExpressions;

namespace Xmpp.Storage;

// Archive collection names become table names in database backends, so every backend accepts the same small set.
internal static partial class ArchiveCollectionName
{
    public static void Validate(string collection)
    {
        if (collection is null || !Pattern().IsMatch(collection))
            throw new ArgumentException($"Archive collection name '{collection}' must be 1-32 of [a-z0-9_].", nameof(collection));
    }

    [GeneratedRegex("^[a-z0-9_]{1,32}$")]
    private static partial Regex Pattern();
}
