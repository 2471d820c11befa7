using System.Buffers;
using BenchmarkDotNet.Attributes;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.MicroBench;

/// ElementWriter into a reused IBufferWriter, and building plus writing a message as a sender does.
[MemoryDiagnoser]
public class SerializerBenchmarks
{
    private readonly ArrayBufferWriter<byte> _out = new(4096);
    private Element _chat = null!;

    [GlobalSetup]
    public void Setup()
    {
        var parser = new XmppStreamParser();
        parser.Parse(new ReadOnlySequence<byte>(Stanzas.Utf8(Stanzas.Header)), out _, out _);
        parser.Parse(new ReadOnlySequence<byte>(Stanzas.Utf8(Stanzas.Chat)), out _, out var e);
        _chat = e!;
        _chat.SetAttr("from", "u3@bench.localhost/tp");
    }

    [Benchmark(Baseline = true)]
    public int WriteChatMessage()
    {
        _out.ResetWrittenCount();
        ElementWriter.Write(_out, _chat, Ns.Client);
        return _out.WrittenCount;
    }

    [Benchmark]
    public int BuildAndWriteChatMessage()
    {
        _out.ResetWrittenCount();
        var m = new Element("message", Ns.Client).SetAttr("to", "u17@bench.localhost").SetAttr("type", "chat").SetAttr("id", "b1-1")
            .Add(new Element("body", Ns.Client).SetText("1:12345:638700000000000000"));
        ElementWriter.Write(_out, m, Ns.Client);
        return _out.WrittenCount;
    }

    [Benchmark]
    public Element CloneChatMessage() => _chat.Clone();
}
