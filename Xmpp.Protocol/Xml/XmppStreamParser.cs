using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Xmpp.Protocol.Xml;

/// <summary>
/// Incremental parser for an XMPP stream: turns bytes, delivered in any fragmentation, into the stream header,
/// complete top-level elements and the stream end, enforcing <see cref="ParserLimits"/> and RFC 6120 §11 while reading.
/// </summary>
/// <remarks>
/// The parser is resumable: every byte handed to it is either part of a returned item or kept in its own state,
/// so after <see cref="XmlItemKind.NeedMoreData"/> the caller passes only new bytes. It is not thread-safe;
/// one connection owns one parser. After an <see cref="XmppStreamException"/> the stream must be closed.
/// </remarks>
public sealed partial class XmppStreamParser
{
    private enum State : byte
    {
        // Between items (nothing buffered). Keep these first: IsOutside relies on the order.
        Start, Bom1, Bom2, Prolog, TopLevel, Ended,

        // Inside an item: the XML declaration, the stream header, a top-level element or the stream's end tag.
        TagOpen, StartTagName, InTag, AttrName, AfterAttrName, BeforeAttrValue, AttrValue, EmptyTagSlash,
        EndTagName, EndTagSpace, Text, EntityStart, EntityName, CharRefStart, CharRefDec, CharRefHex,
        Bang, CdataOpen, Cdata, DeclTarget, DeclBody, DeclQuestion,
    }

    private enum AttrKind : byte { Plain, Prefixed, DefaultNs, PrefixNs }

    private struct AttrSlot
    {
        public string QName;
        public string? Prefix; // the prefix used (Prefixed) or declared (PrefixNs)
        public AttrKind Kind;
        public string Value;
        public string? Uri;    // resolved namespace of a Prefixed attribute
    }

    private readonly record struct Binding(string Prefix, string Uri);

    private readonly record struct OpenElement(Element Element, string? Prefix, string Local, int ScopeStart);

    private const int InitialBufferSize = 1024;
    private const int KeptBufferSize = 16 * 1024;
    private const int MaxValueInternBytes = 64;

    private static readonly SearchValues<byte> Whitespace = SearchValues.Create(" \t\r\n"u8);
    private static readonly SearchValues<byte> NameBytes = SearchValues.Create(BuildNameBytes());
    private static readonly SearchValues<byte> TextStops = SearchValues.Create(WithControls("<&]\r"u8));
    private static readonly SearchValues<byte> CdataStops = SearchValues.Create(WithControls("]\r"u8));
    private static readonly SearchValues<byte> DoubleQuotedStops = SearchValues.Create(WithControls("\"&<\r\n\t"u8));
    private static readonly SearchValues<byte> SingleQuotedStops = SearchValues.Create(WithControls("'&<\r\n\t"u8));
    private static readonly SearchValues<byte> DeclStops = SearchValues.Create(WithControls("?"u8));

    private readonly ParserLimits _limits;
    private readonly NameTable _names = new(NameTable.Common);

    private State _state;
    private long _itemBytes;
    private bool _headerSeen;
    private bool _declAllowed;
    private string? _headerPrefix;
    private string _headerLocal = "";
    private Element? _result;

    // The token being read (name, attribute value, text, declaration): unescaped UTF-8, decoded once when complete.
    // Rented from the shared pool when a token starts and given back by ReleaseBuffer between reads, so an idle
    // connection's parser holds none.
    private byte[] _buf = [];
    private int _len;

    private bool _sawSpace;      // whitespace seen since the last attribute (attributes must be separated)
    private bool _crPending;     // last byte was CR: a following LF belongs to the same line break (XML 1.0 §2.11)
    private byte _quote;
    private int _brackets;       // text: ']' just appended; CDATA: ']' held back until we know it is not "]]>"
    private int _match;
    private State _entityReturn;
    private readonly byte[] _entity = new byte[8];
    private int _entityLen;
    private int _charRef;
    private int _charRefDigits;

    private string? _tagPrefix;
    private string _tagLocal = "";
    private AttrSlot[] _attrs = new AttrSlot[8];
    private int _attrCount;

    private readonly List<OpenElement> _open = new();
    private readonly List<Binding> _bindings = new();

    /// <summary>Creates a parser expecting an optional XML declaration and a stream header.</summary>
    public XmppStreamParser(ParserLimits? limits = null)
    {
        _limits = limits ?? ParserLimits.Default;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(_limits.MaxStanzaBytes, nameof(limits));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(_limits.MaxDepth, nameof(limits));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(_limits.MaxAttributes, nameof(limits));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(_limits.MaxNameLength, nameof(limits));
        Reset();
    }

    /// <summary>The limits this parser enforces.</summary>
    public ParserLimits Limits => _limits;

    /// <summary>Bytes read so far of the item being parsed (a top-level element, or the header), or 0 between items.</summary>
    public long StanzaBytesSoFar => IsOutside(_state) ? 0 : _itemBytes;

    /// <summary>
    /// Parses from the start of <paramref name="buffer"/> until one item is complete or the input runs out;
    /// <paramref name="consumed"/> is just past the item, or the end of the buffer when more data is needed.
    /// </summary>
    /// <exception cref="XmppStreamException">The input breaks XML, RFC 6120 §11 or a limit; the condition says which.</exception>
    public XmlItemKind Parse(in ReadOnlySequence<byte> buffer, out SequencePosition consumed, out Element? item)
    {
        item = null;
        if (buffer.IsSingleSegment)
        {
            int i = 0;
            var kind = ParseSpan(buffer.FirstSpan, ref i);
            if (kind == XmlItemKind.NeedMoreData)
            {
                consumed = buffer.End;
                return kind;
            }
            consumed = buffer.GetPosition(i);
            item = TakeResult();
            return kind;
        }

        var position = buffer.Start;
        var segmentStart = position;
        while (buffer.TryGet(ref position, out var memory))
        {
            int i = 0;
            var kind = ParseSpan(memory.Span, ref i);
            if (kind != XmlItemKind.NeedMoreData)
            {
                consumed = buffer.GetPosition(i, segmentStart);
                item = TakeResult();
                return kind;
            }
            segmentStart = position;
        }
        consumed = buffer.End;
        return XmlItemKind.NeedMoreData;
    }

    /// <summary>Forgets the current stream, as after STARTTLS or SASL success, and expects a new declaration and header.</summary>
    public void Reset()
    {
        _state = State.Start;
        _itemBytes = 0;
        _headerSeen = false;
        _declAllowed = true;
        _headerPrefix = null;
        _headerLocal = "";
        _result = null;
        _len = 0;
        _sawSpace = false;
        _crPending = false;
        _brackets = 0;
        _attrCount = 0;
        _open.Clear();
        _bindings.Clear();
        ShrinkBuffer();
    }

    private Element? TakeResult()
    {
        var r = _result;
        _result = null;
        return r;
    }

    private static bool IsOutside(State s) => s <= State.Ended;

    private XmlItemKind ParseSpan(ReadOnlySpan<byte> span, ref int i)
    {
        while (i < span.Length)
        {
            if (IsOutside(_state))
            {
                ScanOutside(span, ref i);
                continue;
            }

            // Hand the item state machine no more bytes than the stanza limit still allows, so the limit
            // trips on the first byte past it rather than after the whole oversized stanza was buffered.
            long allowed = Math.Max(0, _limits.MaxStanzaBytes - _itemBytes);
            int end = allowed < span.Length - i ? i + (int)allowed : span.Length;
            int start = i;
            var kind = ProcessItem(span[..end], ref i);
            _itemBytes += i - start;
            if (IsOutside(_state))
            {
                _itemBytes = 0;
                ShrinkBuffer();
            }
            if (kind != XmlItemKind.NeedMoreData) return kind;
            if (!IsOutside(_state) && i == end && end < span.Length)
                throw new XmppStreamException(StreamErrors.PolicyViolation,
                    $"Stanza larger than {_limits.MaxStanzaBytes} bytes");
        }
        return XmlItemKind.NeedMoreData;
    }

    private void ScanOutside(ReadOnlySpan<byte> s, ref int i)
    {
        switch (_state)
        {
            case State.Start:
                if (s[i] == 0xEF) { _state = State.Bom1; i++; }
                else _state = State.Prolog;
                return;
            case State.Bom1:
                if (s[i] != 0xBB) throw NotWellFormed("Invalid byte order mark");
                _state = State.Bom2;
                i++;
                return;
            case State.Bom2:
                if (s[i] != 0xBF) throw NotWellFormed("Invalid byte order mark");
                _state = State.Prolog;
                i++;
                return;
        }

        // Whitespace between top-level elements is allowed and is how clients send keepalives (RFC 6120 §4.6.1).
        int k = s[i..].IndexOfAnyExcept(Whitespace);
        if (k < 0)
        {
            i = s.Length;
            return;
        }
        i += k;
        if (s[i] != (byte)'<')
            throw NotWellFormed(_state == State.TopLevel ? "Text outside of a stanza" : "Text before the stream header");
        if (_state == State.Ended) throw NotWellFormed("Content after the end of the stream");
        i++;
        _state = State.TagOpen;
        _itemBytes = 1;
        _len = 0;
    }

    // ---- Token buffer ----

    private void Append(byte b)
    {
        if (_len == _buf.Length) Grow(1);
        _buf[_len++] = b;
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (_buf.Length - _len < bytes.Length) Grow(bytes.Length);
        bytes.CopyTo(_buf.AsSpan(_len));
        _len += bytes.Length;
    }

    private void Grow(int extra)
    {
        int size = Math.Max(Math.Max(_buf.Length * 2, InitialBufferSize), _len + extra);
        var bigger = ArrayPool<byte>.Shared.Rent(size);
        _buf.AsSpan(0, _len).CopyTo(bigger);
        if (_buf.Length > 0) ArrayPool<byte>.Shared.Return(_buf);
        _buf = bigger;
    }

    // A large stanza should not pin a large buffer for the rest of a long-lived connection.
    private void ShrinkBuffer()
    {
        if (_buf.Length <= KeptBufferSize) return;
        ArrayPool<byte>.Shared.Return(_buf);
        _buf = [];
    }

    /// <summary>Gives the token buffer back to the shared pool when no token is half read, so a parser waiting for
    /// input holds no buffer; the next token rents one again. Call it before waiting for more bytes.</summary>
    public void ReleaseBuffer()
    {
        if (_len != 0 || _buf.Length == 0) return;
        ArrayPool<byte>.Shared.Return(_buf);
        _buf = [];
    }

    private ReadOnlySpan<byte> Token => _buf.AsSpan(0, _len);

    // ---- Decoding ----

    private static readonly byte[] Utf8NonCharacterLead = [0xEF, 0xBF];

    // Decodes character data, rejecting malformed UTF-8 and the non-characters U+FFFE and U+FFFF
    // (control characters are already refused byte by byte).
    private static string Decode(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty) return string.Empty;
        if (!Utf8.IsValid(utf8)) throw NotWellFormed("Invalid UTF-8");
        var rest = utf8;
        int k;
        while ((k = rest.IndexOf(Utf8NonCharacterLead)) >= 0)
        {
            if (k + 2 < rest.Length && rest[k + 2] >= 0xBE) throw NotWellFormed("Character not allowed in XML");
            rest = rest[(k + 1)..];
        }
        return Encoding.UTF8.GetString(utf8);
    }

    private string DecodeValue()
    {
        var value = Token;
        if (value.IsEmpty) return string.Empty;
        // Namespaces and stanza types repeat in nearly every stanza; reuse the well-known instances.
        if (value.Length <= MaxValueInternBytes && NameTable.Common.TryGet(value, out var known)) return known;
        // Addresses repeat across stanzas and connections: one string per address, which the router's JID cache
        // then finds by reference. The cached bytes were validated when first decoded.
        var name = _attrs[_attrCount].QName;
        if (name is "to" or "from")
        {
            if (JidCache.Find(value) is { } address) return address;
            var decoded = Decode(value);
            JidCache.Add(value, decoded);
            return decoded;
        }
        return Decode(value);
    }

    // Interns one name part (a prefix, a local name, or an unprefixed name), validating its characters.
    private string InternName(ReadOnlySpan<byte> name)
    {
        // Callers split qualified names first, so a part never starts with ':' here.
        if (name[0] < 0x80 && !XmlChars.IsNameStartByte(name[0])) throw NotWellFormed("Invalid name");
        if (name.IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0) ValidateNonAsciiName(name);
        return _names.GetOrAdd(name);
    }

    private static void ValidateNonAsciiName(ReadOnlySpan<byte> name)
    {
        var text = Decode(name);
        bool atStart = true;
        foreach (var rune in text.EnumerateRunes())
        {
            bool ok = atStart ? XmlChars.IsNameStartChar(rune.Value) : XmlChars.IsNameChar(rune.Value);
            if (!ok) throw NotWellFormed("Invalid character in a name");
            atStart = rune.Value == ':';
        }
    }

    // ---- Errors ----

    private static XmppStreamException NotWellFormed(string text) => new(StreamErrors.NotWellFormed, text);

    private static XmppStreamException Restricted(string text) => new(StreamErrors.RestrictedXml, text);

    private static XmppStreamException BadPrefix(string prefix) =>
        new(StreamErrors.BadNamespacePrefix, $"Undeclared namespace prefix '{prefix}'");

    // ---- Byte classes ----

    private static byte[] BuildNameBytes()
    {
        var bytes = new List<byte>();
        for (int b = 0; b < 256; b++)
            if (b is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '-' or '.' or '_' or ':' or >= 0x80)
                bytes.Add((byte)b);
        return bytes.ToArray();
    }

    // XML 1.0 §2.2: of the C0 controls only tab, line feed and carriage return are characters.
    private static byte[] WithControls(ReadOnlySpan<byte> stops)
    {
        var bytes = new List<byte>(stops.ToArray());
        for (int b = 0; b < 0x20; b++)
            if (b is not (0x9 or 0xA or 0xD)) bytes.Add((byte)b);
        return bytes.ToArray();
    }
}
