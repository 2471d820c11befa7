using System.Buffers;
using System.IO.Pipelines;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Http.WebClients;

/// Cuts what an XmppStream writes into the items a framed transport sends one by one: the stream header, each
/// top-level element, the stream end. A restarted stream (after SASL) begins with a new XML declaration.
internal sealed class StreamOutputReader(PipeReader output)
{
    // Our own output: only the nesting guard matters, the size limit must not cut a large roster result.
    private readonly XmppStreamParser _parser = new(new ParserLimits { MaxStanzaBytes = int.MaxValue, MaxDepth = 256, MaxAttributes = 1024 });

    /// Calls onItem for each complete item until the stream's output ends; returns when the stream has ended.
    public async Task PumpAsync(Func<XmlItemKind, Element?, ValueTask> onItem, CancellationToken ct)
    {
        while (true)
        {
            var result = await output.ReadAsync(ct);
            var buffer = result.Buffer;
            try
            {
                while (true)
                {
                    if (_parser.StanzaBytesSoFar == 0 && StartsWithDeclaration(ref buffer)) _parser.Reset();
                    var kind = _parser.Parse(buffer, out var consumed, out var item);
                    buffer = buffer.Slice(consumed);
                    if (kind == XmlItemKind.NeedMoreData) break;
                    await onItem(kind, item);
                    if (kind == XmlItemKind.StreamEnd) return;
                }
            }
            finally
            {
                output.AdvanceTo(buffer.Start, buffer.End);
            }
            if (result.IsCompleted || result.IsCanceled) return;
        }
    }

    /// Skips whitespace between items and says whether a new stream begins here.
    private static bool StartsWithDeclaration(ref ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        reader.AdvancePastAny((byte)' ', (byte)'\t', (byte)'\r', (byte)'\n');
        buffer = buffer.Slice(reader.Position);
        return reader.IsNext("<?xml"u8, advancePast: false);
    }
}
