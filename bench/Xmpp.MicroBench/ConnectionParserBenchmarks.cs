using System.Buffers;
using BenchmarkDotNet.Attributes;
using Xmpp.Protocol.Xml;

namespace Xmpp.MicroBench;

/// What each new connection's parser costs: creating it (its own NameTable included) and reading the stream header
/// and the first stanza. Every login pays this once, and every idle session keeps what it allocates, so the
/// allocated bytes here are part of the per-session memory (bench/profiles/2026-12-02-session-memory.md).
[MemoryDiagnoser]
public class ConnectionParserBenchmarks
{
    private ReadOnlySequence<byte> _header, _chat;

    [GlobalSetup]
    public void Setup()
    {
        _header = new ReadOnlySequence<byte>(Stanzas.Utf8(Stanzas.Header));
        _chat = new ReadOnlySequence<byte>(Stanzas.Utf8(Stanzas.Chat));
    }

    [Benchmark(Baseline = true)]
    public XmppStreamParser NewParser() => new();

    [Benchmark]
    public Element? NewParserReadsHeaderAndFirstStanza()
    {
        var parser = new XmppStreamParser();
        parser.Parse(_header, out _, out _);
        parser.Parse(_chat, out _, out var e);
        return e;
    }

    /// A peer that uses many names of its own makes the table grow step by step up to its bound.
    [Benchmark]
    public int NameTableGrowsTo300Names()
    {
        var table = new NameTable(NameTable.Common, capacity: 512);
        Span<byte> name = stackalloc byte[8];
        "x-name-0"u8.CopyTo(name);
        for (int i = 0; i < 300; i++)
        {
            name[6] = (byte)('a' + i % 26);
            name[7] = (byte)('a' + i / 26);
            table.GetOrAdd(name);
        }
        return table.Count;
    }
}
