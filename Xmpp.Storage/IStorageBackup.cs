namespace Xmpp.Storage;

// A storage that copies itself while in use (xmppd backup). Each store's copy is what a crash at the moment of its copy
// would leave, so a server started on the copy recovers it as after a crash; the stores are copied one after another.
public interface IStorageBackup
{
    // Copies into directory (existing and empty), flushing first, so everything acknowledged before the call is in it.
    Task BackupAsync(string directory);
}
