namespace Xmpp.Storage;

// Metadata of uploaded files; a file is served only once its record exists.
public interface IUploadStore
{
    // Adds the record; false if one with the same id exists already.
    ValueTask<bool> AddAsync(UploadRecord record);

    ValueTask<UploadRecord?> GetAsync(string id);

    ValueTask<bool> DeleteAsync(string id);

    // Total size of the owner's files, for quotas.
    ValueTask<long> UsedBytesAsync(string owner);

    // The owner's records, oldest first.
    ValueTask<IReadOnlyList<UploadRecord>> ListByOwnerAsync(string owner);

    // Up to limit records created before the given time, oldest first: what retention removes next.
    ValueTask<IReadOnlyList<UploadRecord>> ListCreatedBeforeAsync(DateTimeOffset before, int limit);
}
