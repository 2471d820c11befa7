using System.Buffers;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Streams;

namespace Xmpp.Server.Http.WebClients;

/// One XEP-0124 session: HTTP requests carry the client's elements into an XmppStream (FramedStream) and held requests
/// carry the stream's output back. Requests are handled strictly in 'rid' order; the last answers are kept so a
/// request repeated after a broken connection gets the same answer again (§14.3).
internal sealed partial class BoshSession
{
    public const int Requests = 2;   // hold + 1 (§7.1)
    public const int Hold = 1;
    private readonly object _lock = new();
    private readonly List<byte[]> _pending = [];
    private readonly Dictionary<long, byte[]> _answered = [];
    private readonly LinkedList<Waiter> _held = new();
    private TaskCompletionSource _ridAdvanced = NewSignal();
    private long _nextRid;
    private bool _ended;
    private bool _streamError;
    private long _lastActivityTicks = Environment.TickCount64;
    private readonly TaskCompletionSource<string?> _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class Waiter(long rid, string? attributes = null)
    {
        public long Rid { get; } = rid;
        public string? Attributes { get; } = attributes;
        public TaskCompletionSource<byte[]> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public BoshSession(HttpContext http, StreamServices services, long firstRid, int wait, int inactivity)
    {
        Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        Stream = new FramedStream(http, services);
        _nextRid = firstRid;
        Wait = wait;
        Inactivity = inactivity;
    }

    public string Id { get; }
    public FramedStream Stream { get; }
    public int Wait { get; }
    public int Inactivity { get; }
    public bool Ended { get { lock (_lock) return _ended; } }

    /// No request held and none seen for longer than 'inactivity' (§7.1): the client is gone.
    public bool IsInactive
    {
        get { lock (_lock) return _held.Count == 0 && Environment.TickCount64 - _lastActivityTicks > Inactivity * 1000L; }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// Starts the stream and its output pump; returns the stream id once the server's header is out (XEP-0206 §6 authid).
    public async Task<string?> StartAsync(Element body)
    {
        Stream.Start();
        _ = PumpAsync();
        await Stream.OpenAsync(name => HeaderAttribute(body, name));
        return await _opened.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private static string? HeaderAttribute(Element body, string name) => name switch
    {
        "version" => AttrByLocalName(body, "version", prefixed: true) ?? "1.0",
        "to" => body.Attr("to"),
        "from" => body.Attr("from"),
        "xml:lang" => body.Attr("xml:lang"),
        _ => null,
    };

    /// An attribute from the urn:xmpp:xbosh namespace (xmpp:version, xmpp:restart), whatever prefix the client chose.
    public static string? AttrByLocalName(Element body, string local, bool prefixed)
    {
        foreach (var a in body.Attributes)
            if (prefixed ? a.Name.EndsWith(":" + local, StringComparison.Ordinal) : a.Name == local) return a.Value;
        return null;
    }

    private async Task PumpAsync()
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        try
        {
            await Stream.PumpAsync((kind, item) =>
            {
                if (kind == XmlItemKind.StreamHeader)
                {
                    _opened.TrySetResult(item!.Attr("id"));
                    return ValueTask.CompletedTask;
                }
                if (kind == XmlItemKind.StreamEnd)
                {
                    End();
                    return ValueTask.CompletedTask;
                }
                buffer.ResetWrittenCount();
                FramingWriter.Write(buffer, item!);
                lock (_lock)
                {
                    _pending.Add(buffer.WrittenSpan.ToArray());
                    // XEP-0206 §7.2: a stream error goes out in the terminating body, which the stream's end sends.
                    if (item!.Is("error", Ns.Streams)) _streamError = true;
                    else AnswerOldestHeld();
                }
                return ValueTask.CompletedTask;
            }, CancellationToken.None);
        }
        catch (XmppStreamException)
        {
        }
        finally
        {
            End();
        }
    }

    /// The stream is over: every held request gets the terminating body with whatever was still pending.
    public void End()
    {
        lock (_lock)
        {
            if (_ended) return;
            _ended = true;
            _opened.TrySetResult(null);
            while (_held.First is { } first)
            {
                _held.RemoveFirst();
                Complete(first.Value, TakeBody(terminate: true, first.Value.Attributes));
            }
            _ridAdvanced.TrySetResult();
        }
        Stream.InputEnded();
    }

    // Called with _lock held.
    private void AnswerOldestHeld()
    {
        if (_held.First is not { } first) return;
        _held.RemoveFirst();
        Complete(first.Value, TakeBody(terminate: _ended, first.Value.Attributes));
    }

    private void Complete(Waiter waiter, byte[] body)
    {
        _lastActivityTicks = Environment.TickCount64;
        _answered[waiter.Rid] = body;
        _answered.Remove(waiter.Rid - Requests * 2);
        waiter.Answer.TrySetResult(body);
    }

    // Called with _lock held.
    private byte[] TakeBody(bool terminate, string? attributes = null)
    {
        var children = _pending.ToArray();
        _pending.Clear();
        return BoshBody.Response(children, terminate ? (_streamError ? "remote-stream-error" : "") : null, attributes);
    }
}
