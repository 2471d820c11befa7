using System.Text;

namespace Xmpp.Protocol.Xml;

// Character data, references, CDATA, markup declarations and the XML declaration.
public sealed partial class XmppStreamParser
{
    private void ScanText(ReadOnlySpan<byte> s, ref int i)
    {
        if (_crPending)
        {
            // XML 1.0 §2.11: CR LF and a lone CR both become one LF.
            _crPending = false;
            if (s[i] == (byte)'\n')
            {
                i++;
                return;
            }
        }
        var rest = s[i..];
        int k = rest.IndexOfAny(TextStops);
        int run = k < 0 ? rest.Length : k;
        if (run > 0)
        {
            // XML 1.0 §2.4: "]]>" may not appear literally in content.
            if (_brackets >= 2 && rest[0] == (byte)'>') throw NotWellFormed("']]>' in text");
            _brackets = 0;
            Append(rest[..run]);
            i += run;
            if (k < 0) return;
        }
        byte b = s[i++];
        switch (b)
        {
            case (byte)'<':
                _brackets = 0;
                _state = State.TagOpen;
                return;
            case (byte)'&':
                _brackets = 0;
                _entityReturn = State.Text;
                _state = State.EntityStart;
                return;
            case (byte)']':
                Append(b);
                _brackets++;
                return;
            case (byte)'\r':
                _brackets = 0;
                Append((byte)'\n');
                _crPending = true;
                return;
            default:
                throw NotWellFormed("Control character in text");
        }
    }

    private void ScanAttrValue(ReadOnlySpan<byte> s, ref int i)
    {
        if (_crPending)
        {
            _crPending = false;
            if (s[i] == (byte)'\n')
            {
                i++;
                return;
            }
        }
        var rest = s[i..];
        int k = rest.IndexOfAny(_quote == (byte)'"' ? DoubleQuotedStops : SingleQuotedStops);
        int run = k < 0 ? rest.Length : k;
        if (run > 0)
        {
            Append(rest[..run]);
            i += run;
            if (k < 0) return;
        }
        byte b = s[i++];
        if (b == _quote)
        {
            FinishAttrValue();
            return;
        }
        switch (b)
        {
            case (byte)'&':
                _entityReturn = State.AttrValue;
                _state = State.EntityStart;
                return;
            // XML 1.0 §3.3.3: literal white space in attribute values is normalized to spaces.
            case (byte)'\r':
                Append((byte)' ');
                _crPending = true;
                return;
            case (byte)'\n':
            case (byte)'\t':
                Append((byte)' ');
                return;
            case (byte)'<':
                throw NotWellFormed("'<' in an attribute value");
            default:
                throw NotWellFormed("Control character in an attribute value");
        }
    }

    private void FlushText()
    {
        if (_len > 0 && _open.Count > 0) _open[^1].Element.AddText(Decode(Token));
        _len = 0;
    }

    private void ProcessContent(ReadOnlySpan<byte> s, ref int i)
    {
        switch (_state)
        {
            case State.EntityStart:
            {
                byte b = s[i++];
                if (b == (byte)'#')
                {
                    _charRef = 0;
                    _charRefDigits = 0;
                    _state = State.CharRefStart;
                }
                else if (XmlChars.IsNameStartByte(b))
                {
                    _entity[0] = b;
                    _entityLen = 1;
                    _state = State.EntityName;
                }
                else
                {
                    throw NotWellFormed("Invalid reference after '&'");
                }
                return;
            }

            case State.EntityName:
            {
                byte b = s[i++];
                if (b == (byte)';')
                {
                    Append(ResolveEntity());
                    _state = _entityReturn;
                    return;
                }
                if (b >= 0x80 || NameBytes.Contains(b))
                {
                    // RFC 6120 §11.1: no DTD, so only the five predefined entities exist; none is this long.
                    if (_entityLen == _entity.Length) throw Restricted("Undefined entity");
                    _entity[_entityLen++] = b;
                    return;
                }
                throw NotWellFormed("Unterminated entity reference");
            }

            case State.CharRefStart:
            {
                byte b = s[i];
                if (b == (byte)'x')
                {
                    i++;
                    _state = State.CharRefHex;
                }
                else if (b is >= (byte)'0' and <= (byte)'9')
                {
                    _state = State.CharRefDec;
                }
                else
                {
                    throw NotWellFormed("Invalid character reference");
                }
                return;
            }

            case State.CharRefDec:
            case State.CharRefHex:
            {
                byte b = s[i++];
                if (b == (byte)';')
                {
                    FinishCharRef();
                    return;
                }
                int digit = b switch
                {
                    >= (byte)'0' and <= (byte)'9' => b - '0',
                    >= (byte)'a' and <= (byte)'f' when _state == State.CharRefHex => b - 'a' + 10,
                    >= (byte)'A' and <= (byte)'F' when _state == State.CharRefHex => b - 'A' + 10,
                    _ => throw NotWellFormed("Invalid character reference"),
                };
                int radix = _state == State.CharRefHex ? 16 : 10;
                // Saturate just above the Unicode range; leading zeros stay harmless.
                _charRef = Math.Min(_charRef * radix + digit, 0x110000);
                _charRefDigits++;
                return;
            }

            case State.Bang:
            {
                byte b = s[i++];
                if (b == (byte)'[')
                {
                    if (_open.Count == 0) throw NotWellFormed("CDATA outside of an element");
                    _match = 0;
                    _state = State.CdataOpen;
                    return;
                }
                // RFC 6120 §11.1: comments, DOCTYPE and other markup declarations are forbidden.
                throw Restricted(b == (byte)'-' ? "Comments are not allowed" : "Document type declarations are not allowed");
            }

            case State.CdataOpen:
                if (s[i++] != "CDATA["u8[_match]) throw NotWellFormed("Malformed CDATA section");
                if (++_match == 6)
                {
                    _brackets = 0;
                    _crPending = false;
                    _state = State.Cdata;
                }
                return;

            case State.Cdata:
                ScanCdata(s, ref i);
                return;

            case State.DeclBody:
            {
                var rest = s[i..];
                int k = rest.IndexOfAny(DeclStops);
                int run = k < 0 ? rest.Length : k;
                Append(rest[..run]);
                i += run;
                if (k < 0) return;
                if (s[i++] != (byte)'?') throw NotWellFormed("Control character in the XML declaration");
                _state = State.DeclQuestion;
                return;
            }

            case State.DeclQuestion:
                if (s[i] != (byte)'>')
                {
                    Append((byte)'?');
                    _state = State.DeclBody;
                    return;
                }
                i++;
                ParseDeclaration(Token);
                _len = 0;
                _declAllowed = false;
                _state = State.Prolog;
                return;

            default:
                throw new InvalidOperationException($"Unexpected parser state {_state}");
        }
    }

    private ReadOnlySpan<byte> ResolveEntity()
    {
        var name = _entity.AsSpan(0, _entityLen);
        if (name.SequenceEqual("amp"u8)) return "&"u8;
        if (name.SequenceEqual("lt"u8)) return "<"u8;
        if (name.SequenceEqual("gt"u8)) return ">"u8;
        if (name.SequenceEqual("quot"u8)) return "\""u8;
        if (name.SequenceEqual("apos"u8)) return "'"u8;
        throw Restricted("Undefined entity");
    }

    private void FinishCharRef()
    {
        if (_charRefDigits == 0) throw NotWellFormed("Empty character reference");
        // XML 1.0 §4.1: a character reference must still name a legal character.
        if (!XmlChars.IsChar(_charRef)) throw NotWellFormed("Character reference to an illegal character");
        Span<byte> utf8 = stackalloc byte[4];
        int n = new Rune(_charRef).EncodeToUtf8(utf8);
        Append(utf8[..n]);
        _state = _entityReturn;
    }

    private void ScanCdata(ReadOnlySpan<byte> s, ref int i)
    {
        if (_crPending)
        {
            _crPending = false;
            if (s[i] == (byte)'\n')
            {
                i++;
                return;
            }
        }
        if (_brackets > 0)
        {
            // ']' bytes are held back until we know whether they start the "]]>" terminator.
            byte b = s[i];
            if (b == (byte)']')
            {
                _brackets++;
                i++;
                return;
            }
            if (b == (byte)'>' && _brackets >= 2)
            {
                AppendBrackets(_brackets - 2);
                _brackets = 0;
                i++;
                _state = State.Text;
                return;
            }
            AppendBrackets(_brackets);
            _brackets = 0;
        }
        var rest = s[i..];
        int k = rest.IndexOfAny(CdataStops);
        int run = k < 0 ? rest.Length : k;
        Append(rest[..run]);
        i += run;
        if (k < 0) return;
        byte d = s[i++];
        if (d == (byte)']')
        {
            _brackets = 1;
        }
        else if (d == (byte)'\r')
        {
            Append((byte)'\n');
            _crPending = true;
        }
        else
        {
            throw NotWellFormed("Control character in CDATA");
        }
    }

    private void AppendBrackets(int count)
    {
        for (int n = 0; n < count; n++) Append((byte)']');
    }

    // Checks the pseudo-attributes of <?xml ...?> (XML 1.0 §2.8, §4.3.3); the stream must be UTF-8 (RFC 6120 §11.6).
    private static void ParseDeclaration(ReadOnlySpan<byte> d)
    {
        int pos = 0;
        int index = 0;
        bool version = false;
        while (true)
        {
            int start = pos;
            while (pos < d.Length && XmlChars.IsWhitespace(d[pos])) pos++;
            if (pos == d.Length) break;
            if (index > 0 && pos == start) throw NotWellFormed("Malformed XML declaration");
            int nameStart = pos;
            while (pos < d.Length && d[pos] is >= (byte)'a' and <= (byte)'z') pos++;
            var name = d[nameStart..pos];
            while (pos < d.Length && XmlChars.IsWhitespace(d[pos])) pos++;
            if (pos == d.Length || d[pos] != (byte)'=') throw NotWellFormed("Malformed XML declaration");
            pos++;
            while (pos < d.Length && XmlChars.IsWhitespace(d[pos])) pos++;
            if (pos == d.Length || d[pos] is not ((byte)'"' or (byte)'\'')) throw NotWellFormed("Malformed XML declaration");
            byte quote = d[pos++];
            int close = d[pos..].IndexOf(quote);
            if (close < 0) throw NotWellFormed("Malformed XML declaration");
            var value = d.Slice(pos, close);
            pos += close + 1;

            if (name.SequenceEqual("version"u8))
            {
                if (index != 0 || value.Length < 3 || !value.StartsWith("1."u8)) throw NotWellFormed("Unsupported XML version");
                version = true;
            }
            else if (name.SequenceEqual("encoding"u8) && version)
            {
                if (!Ascii.EqualsIgnoreCase(value, "UTF-8"u8))
                    throw new XmppStreamException(StreamErrors.UnsupportedEncoding, "The stream must be UTF-8");
            }
            else if (name.SequenceEqual("standalone"u8) && version)
            {
                if (!value.SequenceEqual("yes"u8) && !value.SequenceEqual("no"u8)) throw NotWellFormed("Malformed XML declaration");
            }
            else
            {
                throw NotWellFormed("Malformed XML declaration");
            }
            index++;
        }
        if (!version) throw NotWellFormed("XML declaration without a version");
    }
}
