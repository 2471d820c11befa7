namespace Xmpp.Storage.Log;

internal enum LogRecordKind : byte
{
    Append = 1,

    // A new payload for an earlier record of the owner (its id); the index is repointed at the replacement.
    Replace = 2,

    // Every record of the owner with an id up to and including this one is deleted.
    DeleteThrough = 3,
}
