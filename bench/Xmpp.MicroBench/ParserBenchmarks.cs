using System.Buffers;
using BenchmarkDotNet.Attributes;
using Xmpp.Protocol.Xml;

namespace Xmpp.MicroBench;

/// XmppStreamParser: one stanza per call, and a read of 64 stanzas parsed in a loop as the server's read loop does.
[MemoryDiagnoser]
public class ParserBenchmarks
{
    private XmppStreamParser _parser = null!;
    private ReadOnlySequence<byte> _chat, _presence, _batch;

    [GlobalSetup]
    public void Setup()
    {
        _parser = new XmppStreamParser();
        var header = new ReadOnlySequence<byte>(Stanzas.Utf8(Stanzas.Header));
        if (_parser.Parse(header, out _, out _) != XmlItemKind.StreamHeader) throw new InvalidOperationException("no header");
        _chat = new ReadOnlySequence<byte>(Stanzas.Utf8(Stanzas.Chat));
        _presence = new ReadOnlySequence<byte>(Stanzas.Utf8(Stanzas.Presence));
        _batch = new ReadOnlySequence<byte>(Stanzas.Utf8(string.Concat(Enumerable.Repeat(Stanzas.Chat, 64))));
    }

    [Benchmark(Baseline = true)]
    public Element? ParseChatMessage()
    {
        _parser.Parse(_chat, out _, out var e);
        return e;
    }

    [Benchmark]
    public Element? ParsePresenceWithCaps()
    {
        _parser.Parse(_presence, out _, out var e);
        return e;
    }

    [Benchmark(OperationsPerInvoke = 64)]
    public int ParseBatchOf64()
    {
        var buffer = _batch;
        int n = 0;
        while (_parser.Parse(buffer, out var consumed, out _) == XmlItemKind.Element)
        {
            buffer = buffer.Slice(consumed);
            n++;
        }
        return n;
    }
}
