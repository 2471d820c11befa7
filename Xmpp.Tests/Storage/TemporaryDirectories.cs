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

    // A new directory with a copy of every file below source, read while its store may still have them open (as a
    // crash leaves them: whatever reached the files, nothing more).
    public string CopyOf(string source)
    {
        var copy = Create();
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            using var input = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var output = File.Create(target);
            input.CopyTo(output);
        }
        return copy;
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
