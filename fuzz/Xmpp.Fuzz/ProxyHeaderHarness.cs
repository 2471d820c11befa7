using System.Buffers;
using Xmpp.Server.ProxyProtocol;

namespace Xmpp.Fuzz;

/// The PROXY protocol header parser (Xmpp.Server/ProxyProtocol). It never throws; a header it accepts is at most
/// MaxHeaderBytes and no longer than the input; the answer is the same whole and split in two at a point the input
/// chooses; and it is stable under more bytes: every shorter prefix of an accepted header is NeedMore, and the input
/// cut at the header's end is accepted with the same result.
public static class ProxyHeaderHarness
{
    public static void Run(byte[] data) => FuzzAssert.WithinAllocationBound(data.Length, () => { Check(data); return 0; });

    private static void Check(byte[] data)
    {
        var status = ProxyHeaderParser.TryParse(new ReadOnlySequence<byte>(data), out var header, out var length, out var error);
        FuzzAssert.True(status != ProxyParseStatus.Invalid || error is { Length: > 0 }, "Invalid without a reason");
        if (data.Length > 1)
        {
            var split = 1 + data[^1] % (data.Length - 1);
            var first = new Segment(data.AsMemory(0, split));
            var last = first.Append(data.AsMemory(split));
            var again = ProxyHeaderParser.TryParse(new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length), out var header2, out var length2, out var error2);
            FuzzAssert.True(again == status && header2 == header && length2 == length && error2 == error, $"split at {split} gives another answer");
        }
        if (status != ProxyParseStatus.Done) return;
        FuzzAssert.True(length > 0 && length <= data.Length && length <= ProxyHeaderParser.MaxHeaderBytes, $"accepted length {length}");
        FuzzAssert.True(header.Version is 1 or 2, "version " + header.Version);
        FuzzAssert.True(header.Source is null == header.Destination is null, "a source without a destination");
        var exact = ProxyHeaderParser.TryParse(new ReadOnlySequence<byte>(data, 0, length), out var header3, out var length3, out _);
        FuzzAssert.True(exact == ProxyParseStatus.Done && header3 == header && length3 == length, "the header alone parses differently");
        for (int prefix = 0; prefix < length; prefix++)
            FuzzAssert.True(ProxyHeaderParser.TryParse(new ReadOnlySequence<byte>(data, 0, prefix), out _, out _, out _) == ProxyParseStatus.NeedMore,
                $"the first {prefix} bytes of an accepted header are not NeedMore");
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex = 0)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
