namespace Xmpp.Tests.Storage;

// Fresh data directories under the system temp folder, all deleted by DeleteAll.
public sealed class TemporaryDirectories
{
    private readonly List<string> _created = [];

    public string Create()
    {
        var path = Path.Combine(Path.GetTempPath(), "xmpp-storage-tests", Guid.NewGuid().ToString("N"));
        _created.Add(path);
        return path;
    }

    public void DeleteAll()
    {
        foreach (var path in _created)
        {
            if (Directory.Exists(path))
                Directory.Delete(path, recursive: true);
        }
        _created.Clear();
    }
}
