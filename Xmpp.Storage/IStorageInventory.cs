namespace Xmpp.Storage;

// Who has data in each store, which the stores' own interfaces never need to say (modules always know the owner they
// ask about): what xmppd migrate walks to copy everything from one storage into another. Lists may name owners whose
// data has since been deleted; they are ordinal-ordered and without duplicates.
public interface IStorageInventory
{
    ValueTask<IReadOnlyList<string>> RosterOwnersAsync();

    ValueTask<IReadOnlyList<string>> KeyValueOwnersAsync();

    // Every archive collection that holds or held records, whether or not this process has opened it.
    ValueTask<IReadOnlyList<string>> ArchiveCollectionsAsync();

    ValueTask<IReadOnlyList<string>> ArchiveOwnersAsync(string collection);
}
