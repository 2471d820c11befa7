using System.Security.Cryptography;

namespace Xmpp.Tests.Support;

/// A read-only stream of deterministic pseudo-random bytes that hashes what it hands out, so a 100 MB upload costs no
/// memory and its SHA-256 is known afterwards. Optionally pauses at a given offset until released.
public sealed class PatternStream(long length, ulong seed = 0x9E3779B97F4A7C15) : Stream
{
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private ulong _state = seed | 1;
    private long _position;

    /// When set, reading stops at this offset until Release completes; Reached completes when it gets there.
    public long? PauseAt { get; init; }
    public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    private byte[]? _final;

    /// The SHA-256 of the bytes read so far; still available after the stream was disposed (HttpClient does that).
    public byte[] Sha256() => _final ?? _sha.GetCurrentHash();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = (int)Math.Min(buffer.Length, length - _position);
        if (PauseAt is { } pause && _position < pause) n = (int)Math.Min(n, pause - _position);
        for (int i = 0; i < n; i++)
        {
            // xorshift64*: fast, and not compressible, so TLS and the disk see realistic data.
            _state ^= _state >> 12;
            _state ^= _state << 25;
            _state ^= _state >> 27;
            buffer[i] = (byte)((_state * 0x2545F4914F6CDD1DUL) >> 56);
        }
        _sha.AppendData(buffer[..n]);
        _position += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (PauseAt is { } pause && _position == pause && !Release.Task.IsCompleted)
        {
            Reached.TrySetResult();
            await Release.Task.WaitAsync(cancellationToken);
        }
        return Read(buffer.Span);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && _final is null)
        {
            _final = _sha.GetCurrentHash();
            _sha.Dispose();
        }
        base.Dispose(disposing);
    }
}
