namespace Xmpp.Storage;

// A data file that cannot be read as written: the server stops at start with this message (one line, naming the file
// and what to do) rather than dropping what follows the damage or running on a half-read database.
public sealed class StorageDamagedException(string path, string problem, Exception? inner = null)
    : Exception($"{path} is damaged: {problem.TrimEnd('.')}. Nothing was changed. Stop here and restore the data folder from a backup " +
        "(xmppd restore BACKUPDIR, from a folder made by xmppd backup), or start with --data-dir on a copy you have repaired.", inner)
{
    public string Path { get; } = path;
}
