using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace Xmpp.Storage.Log;

// The segment files of one archive log, <directory>/<number>.log, numbered from 1. Only the newest is written, always
// at its end, by one thread (the log's writer); any thread may read records at known locations. A segment is removed
// once no live record remains in it (see LogArchiveStore.Indexer).
internal sealed class SegmentFiles : IDisposable
{
    private const string Extension = ".log";

    private readonly string _directory;
    private readonly long _segmentBytes;
    private readonly Dictionary<int, SafeFileHandle> _readers = [];
    private FileStream? _active;

    public SegmentFiles(string directory, long segmentBytes)
    {
        _directory = directory;
        _segmentBytes = segmentBytes;
        System.IO.Directory.CreateDirectory(directory);
    }

    public string Directory => _directory;

    // The segment appends go to, and the offset the next one lands at.
    public int ActiveSegment { get; private set; }

    public long ActiveLength { get; private set; }

    public IReadOnlyList<int> Existing() =>
        System.IO.Directory.EnumerateFiles(_directory, "*" + Extension)
            .Select(path => int.TryParse(Path.GetFileNameWithoutExtension(path), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0)
            .Where(n => n > 0)
            .Order()
            .ToList();

    public string PathOf(int segment) => Path.Combine(_directory, segment.ToString("D8", CultureInfo.InvariantCulture) + Extension);

    // After recovery: appends continue at the end of the newest segment (or a first one).
    public void OpenForAppend(int segment)
    {
        _active?.Dispose();
        ActiveSegment = Math.Max(segment, 1);
        _active = new FileStream(PathOf(ActiveSegment), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 0);
        ActiveLength = _active.Length;
        _active.Position = ActiveLength;
    }

    // Whether a record of that length still fits the active segment after the bytes not yet appended; an empty
    // segment takes any record.
    public bool Fits(long unwritten, int length) => ActiveLength + unwritten == 0 || ActiveLength + unwritten + length <= _segmentBytes;

    // Durably ends the active segment and starts the next.
    public void Roll()
    {
        _active!.Flush(flushToDisk: true);
        OpenForAppend(ActiveSegment + 1);
    }

    public void Append(ReadOnlySpan<byte> records)
    {
        _active!.Write(records);
        ActiveLength += records.Length;
    }

    // After a failed append or fsync (disk full): the active segment ends again where it ended before, so a retry
    // writes the same records at the same offsets and no half-written record stays between two whole ones.
    public void CutBack(long length)
    {
        _active!.SetLength(length);
        _active.Position = length;
        ActiveLength = length;
    }

    // fsync: once it returns, what Append wrote survives a crash of the process or the machine.
    public void Sync() => _active!.Flush(flushToDisk: true);

    public byte[] Read(LogLocation location)
    {
        var buffer = new byte[location.Length];
        var read = RandomAccess.Read(Reader(location.Segment), buffer, location.Offset);
        if (read != buffer.Length)
            throw new IOException($"Archive segment {location.Segment} ends before the record at {location.Offset}.");
        return buffer;
    }

    public void Delete(int segment)
    {
        lock (_readers)
        {
            if (_readers.Remove(segment, out var handle))
                handle.Dispose();
        }
        File.Delete(PathOf(segment));
    }

    // Cuts a segment at the end of its last whole record (a crash left a partial one after it).
    public void Truncate(int segment, long length)
    {
        using var stream = new FileStream(PathOf(segment), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        stream.SetLength(length);
        stream.Flush(flushToDisk: true);
    }

    public void Dispose()
    {
        _active?.Dispose();
        lock (_readers)
        {
            foreach (var handle in _readers.Values)
                handle.Dispose();
            _readers.Clear();
        }
    }

    private SafeFileHandle Reader(int segment)
    {
        lock (_readers)
        {
            if (!_readers.TryGetValue(segment, out var handle))
                _readers[segment] = handle = File.OpenHandle(PathOf(segment), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return handle;
        }
    }
}
