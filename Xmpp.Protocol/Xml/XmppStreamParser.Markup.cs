namespace Xmpp.Protocol.Xml;

// Tags, attributes and namespaces.
public sealed partial class XmppStreamParser
{
    // Runs the item state machine over s from i until an item completes, the item ends without producing one
    // (the XML declaration), or s runs out. Every byte up to the returned i has been taken into state.
    private XmlItemKind ProcessItem(ReadOnlySpan<byte> s, ref int i)
    {
        while (i < s.Length && !IsOutside(_state))
        {
            XmlItemKind kind;
            switch (_state)
            {
                case State.Text:
                    ScanText(s, ref i);
                    continue;

                case State.TagOpen:
                    OnTagOpen(s[i], ref i);
                    continue;

                case State.StartTagName:
                case State.AttrName:
                case State.EndTagName:
                case State.DeclTarget:
                {
                    int k = s[i..].IndexOfAnyExcept(NameBytes);
                    int run = k < 0 ? s.Length - i : k;
                    if (run > 0)
                    {
                        // The first byte before the length: it is there however the input is split, the length
                        // only once enough has arrived, so the other order gave split input another error (fuzzing).
                        if (_len == 0 && !XmlChars.IsNameStartByte(s[i])) throw NotWellFormed("Invalid name");
                        if (_len + run > _limits.MaxNameLength)
                            throw new XmppStreamException(StreamErrors.PolicyViolation,
                                $"Name longer than {_limits.MaxNameLength} bytes");
                        Append(s.Slice(i, run));
                        i += run;
                        if (k < 0) continue;
                    }
                    kind = OnNameEnd(s[i++]);
                    if (kind != XmlItemKind.NeedMoreData) return kind;
                    continue;
                }

                case State.InTag:
                {
                    byte b = s[i];
                    if (XmlChars.IsWhitespace(b))
                    {
                        _sawSpace = true;
                        i++;
                        continue;
                    }
                    i++;
                    if (b == (byte)'>')
                    {
                        kind = CloseStartTag(empty: false);
                        if (kind != XmlItemKind.NeedMoreData) return kind;
                        continue;
                    }
                    if (b == (byte)'/')
                    {
                        _state = State.EmptyTagSlash;
                        continue;
                    }
                    if (!XmlChars.IsNameStartByte(b)) throw NotWellFormed("Invalid character in a tag");
                    if (!_sawSpace) throw NotWellFormed("Attributes must be separated by whitespace");
                    if (_attrCount >= _limits.MaxAttributes)
                        throw new XmppStreamException(StreamErrors.PolicyViolation,
                            $"More than {_limits.MaxAttributes} attributes on one element");
                    _len = 0;
                    Append(b);
                    _state = State.AttrName;
                    continue;
                }

                case State.AfterAttrName:
                {
                    byte b = s[i++];
                    if (XmlChars.IsWhitespace(b)) continue;
                    if (b != (byte)'=') throw NotWellFormed("Expected '=' after an attribute name");
                    _state = State.BeforeAttrValue;
                    continue;
                }

                case State.BeforeAttrValue:
                {
                    byte b = s[i++];
                    if (XmlChars.IsWhitespace(b)) continue;
                    if (b is not ((byte)'"' or (byte)'\'')) throw NotWellFormed("Attribute value must be quoted");
                    _quote = b;
                    _len = 0;
                    _crPending = false;
                    _state = State.AttrValue;
                    continue;
                }

                case State.AttrValue:
                    ScanAttrValue(s, ref i);
                    continue;

                case State.EmptyTagSlash:
                    if (s[i++] != (byte)'>') throw NotWellFormed("Expected '>' after '/'");
                    kind = CloseStartTag(empty: true);
                    if (kind != XmlItemKind.NeedMoreData) return kind;
                    continue;

                case State.EndTagSpace:
                {
                    byte b = s[i++];
                    if (XmlChars.IsWhitespace(b)) continue;
                    if (b != (byte)'>') throw NotWellFormed("Expected '>' in an end tag");
                    kind = FinishEndTag();
                    if (kind != XmlItemKind.NeedMoreData) return kind;
                    continue;
                }

                default:
                    ProcessContent(s, ref i);
                    continue;
            }
        }
        return XmlItemKind.NeedMoreData;
    }

    private void OnTagOpen(byte b, ref int i)
    {
        if (b == (byte)'!')
        {
            // Keep any pending text: a CDATA section continues it.
            i++;
            _state = State.Bang;
            return;
        }
        FlushText();
        if (b == (byte)'/')
        {
            i++;
            _state = State.EndTagName;
        }
        else if (b == (byte)'?')
        {
            // RFC 6120 §11.1: no processing instructions; only the XML declaration, and only before the header.
            if (_headerSeen || !_declAllowed) throw Restricted("Processing instructions are not allowed");
            i++;
            _state = State.DeclTarget;
        }
        else if (XmlChars.IsNameStartByte(b))
        {
            if (_headerSeen && _open.Count >= _limits.MaxDepth)
                throw new XmppStreamException(StreamErrors.PolicyViolation,
                    $"Elements nested deeper than {_limits.MaxDepth}");
            _attrCount = 0;
            _sawSpace = false;
            _state = State.StartTagName;
        }
        else
        {
            throw NotWellFormed("Invalid character after '<'");
        }
    }

    private XmlItemKind OnNameEnd(byte d)
    {
        switch (_state)
        {
            case State.StartTagName:
                SplitQName(out _tagPrefix, out _tagLocal);
                if (XmlChars.IsWhitespace(d))
                {
                    _sawSpace = true;
                    _state = State.InTag;
                    return XmlItemKind.NeedMoreData;
                }
                if (d == (byte)'>') return CloseStartTag(empty: false);
                if (d == (byte)'/')
                {
                    _state = State.EmptyTagSlash;
                    return XmlItemKind.NeedMoreData;
                }
                throw NotWellFormed("Invalid character in an element name");

            case State.AttrName:
                FinishAttrName();
                if (XmlChars.IsWhitespace(d)) _state = State.AfterAttrName;
                else if (d == (byte)'=') _state = State.BeforeAttrValue;
                else throw NotWellFormed("Invalid character in an attribute name");
                return XmlItemKind.NeedMoreData;

            case State.EndTagName:
                if (_len == 0) throw NotWellFormed("Empty end tag");
                if (XmlChars.IsWhitespace(d))
                {
                    _state = State.EndTagSpace; // the name stays in the buffer until '>'
                    return XmlItemKind.NeedMoreData;
                }
                if (d == (byte)'>') return FinishEndTag();
                throw NotWellFormed("Invalid character in an end tag");

            default: // DeclTarget
                if (_len == 0) throw NotWellFormed("Missing processing instruction target");
                if (!Token.SequenceEqual("xml"u8)) throw Restricted("Processing instructions are not allowed");
                if (!XmlChars.IsWhitespace(d)) throw NotWellFormed("Malformed XML declaration");
                _len = 0;
                _state = State.DeclBody;
                return XmlItemKind.NeedMoreData;
        }
    }

    // Splits the qualified name in the buffer per Namespaces in XML 1.0 §4 (at most one colon, neither part empty).
    private void SplitQName(out string? prefix, out string local)
    {
        var name = Token;
        int colon = name.IndexOf((byte)':');
        if (colon < 0)
        {
            prefix = null;
            local = InternName(name);
            return;
        }
        if (colon == 0 || colon == name.Length - 1 || name[(colon + 1)..].Contains((byte)':'))
            throw NotWellFormed("Invalid qualified name");
        prefix = InternName(name[..colon]);
        local = InternName(name[(colon + 1)..]);
    }

    private void FinishAttrName()
    {
        var name = Token;
        if (_attrCount == _attrs.Length) Array.Resize(ref _attrs, Math.Min(_attrs.Length * 2, _limits.MaxAttributes));
        ref var slot = ref _attrs[_attrCount];
        slot = default;
        int colon = name.IndexOf((byte)':');
        if (colon < 0)
        {
            slot.QName = InternName(name);
            slot.Kind = slot.QName == "xmlns" ? AttrKind.DefaultNs : AttrKind.Plain;
        }
        else
        {
            if (colon == 0 || colon == name.Length - 1 || name[(colon + 1)..].Contains((byte)':'))
                throw NotWellFormed("Invalid qualified name");
            var prefix = name[..colon];
            var local = name[(colon + 1)..];
            if (local[0] < 0x80 && !XmlChars.IsNameStartByte(local[0])) throw NotWellFormed("Invalid name");
            slot.QName = InternName(name);
            if (prefix.SequenceEqual("xmlns"u8))
            {
                slot.Kind = AttrKind.PrefixNs;
                slot.Prefix = InternName(local);
            }
            else
            {
                slot.Kind = AttrKind.Prefixed;
                slot.Prefix = InternName(prefix);
            }
        }
        for (int j = 0; j < _attrCount; j++)
            if (_attrs[j].QName == slot.QName) throw NotWellFormed($"Duplicate attribute '{slot.QName}'");
    }

    private void FinishAttrValue()
    {
        _attrs[_attrCount].Value = DecodeValue();
        _attrCount++;
        _len = 0;
        _sawSpace = false;
        _state = State.InTag;
    }

    private XmlItemKind CloseStartTag(bool empty)
    {
        int scopeStart = _bindings.Count;
        for (int a = 0; a < _attrCount; a++)
        {
            ref var at = ref _attrs[a];
            if (at.Kind == AttrKind.DefaultNs)
            {
                _bindings.Add(new Binding("", at.Value));
            }
            else if (at.Kind == AttrKind.PrefixNs)
            {
                // Namespaces in XML 1.0 §3: 'xmlns' cannot be declared, 'xml' only to its own URI,
                // and a prefix cannot be undeclared with an empty value.
                string prefix = at.Prefix!;
                if (prefix == "xmlns" || (prefix == "xml") != (at.Value == Ns.Xml))
                    throw new XmppStreamException(StreamErrors.BadNamespacePrefix, $"Reserved prefix '{prefix}'");
                if (at.Value.Length == 0) throw NotWellFormed($"Empty namespace for prefix '{prefix}'");
                _bindings.Add(new Binding(prefix, at.Value));
            }
        }

        string ns = Resolve(_tagPrefix);
        bool anyPrefixed = false;
        for (int a = 0; a < _attrCount; a++)
        {
            ref var at = ref _attrs[a];
            if (at.Kind != AttrKind.Prefixed) continue;
            at.Uri = Resolve(at.Prefix);
            anyPrefixed = true;
        }
        if (anyPrefixed) CheckExpandedAttributeNames();

        if (!_headerSeen) return CloseStreamHeader(ns, empty);

        var element = new Element(_tagLocal, ns);
        for (int a = 0; a < _attrCount; a++)
        {
            ref var at = ref _attrs[a];
            // The default namespace declaration is carried by Element.Namespace; the writer re-emits it.
            if (at.Kind != AttrKind.DefaultNs) element.SetAttr(at.QName, at.Value);
        }
        if (_open.Count > 0) _open[^1].Element.Add(element);
        _len = 0;
        _brackets = 0;
        _crPending = false;

        if (empty)
        {
            _bindings.RemoveRange(scopeStart, _bindings.Count - scopeStart);
            if (_open.Count == 0)
            {
                _state = State.TopLevel;
                _result = element;
                return XmlItemKind.Element;
            }
            _state = State.Text;
            return XmlItemKind.NeedMoreData;
        }
        _open.Add(new OpenElement(element, _tagPrefix, _tagLocal, scopeStart));
        _state = State.Text;
        return XmlItemKind.NeedMoreData;
    }

    private XmlItemKind CloseStreamHeader(string ns, bool empty)
    {
        // RFC 6120 §4.8.1: the stream namespace is fixed. Its declarations stay in scope for every stanza.
        if (ns != Ns.Streams) throw new XmppStreamException(StreamErrors.InvalidNamespace, "Stream namespace must be " + Ns.Streams);
        if (_tagLocal != "stream" || empty) throw new XmppStreamException(StreamErrors.BadFormat, "Expected an open <stream:stream> header");
        var header = new Element(_tagLocal, ns);
        for (int a = 0; a < _attrCount; a++) header.SetAttr(_attrs[a].QName, _attrs[a].Value);
        _headerSeen = true;
        _declAllowed = false;
        _headerPrefix = _tagPrefix;
        _headerLocal = _tagLocal;
        _state = State.TopLevel;
        _result = header;
        return XmlItemKind.StreamHeader;
    }

    private void CheckExpandedAttributeNames()
    {
        // Namespaces in XML 1.0 §6.3: two attributes may not share namespace and local name, even under different prefixes.
        for (int a = 0; a < _attrCount; a++)
        {
            ref var x = ref _attrs[a];
            if (x.Kind != AttrKind.Prefixed) continue;
            var xLocal = x.QName.AsSpan(x.Prefix!.Length + 1);
            for (int b = a + 1; b < _attrCount; b++)
            {
                ref var y = ref _attrs[b];
                if (y.Kind == AttrKind.Prefixed && y.Uri == x.Uri && xLocal.SequenceEqual(y.QName.AsSpan(y.Prefix!.Length + 1)))
                    throw NotWellFormed($"Duplicate attribute '{y.QName}'");
            }
        }
    }

    private string Resolve(string? prefix)
    {
        string key = prefix ?? "";
        if (key == "xml") return Ns.Xml;
        if (key == "xmlns") throw new XmppStreamException(StreamErrors.BadNamespacePrefix, "The 'xmlns' prefix cannot be used");
        for (int b = _bindings.Count - 1; b >= 0; b--)
            if (_bindings[b].Prefix == key) return _bindings[b].Uri;
        if (prefix is null) return "";
        throw BadPrefix(prefix);
    }

    private XmlItemKind FinishEndTag()
    {
        SplitQName(out var prefix, out var local);
        _len = 0;
        if (_open.Count == 0)
        {
            if (!_headerSeen) throw NotWellFormed("End tag before the stream header");
            if (prefix != _headerPrefix || local != _headerLocal) throw NotWellFormed("Mismatched end tag");
            _state = State.Ended;
            _result = null;
            return XmlItemKind.StreamEnd;
        }
        var top = _open[^1];
        if (prefix != top.Prefix || local != top.Local) throw NotWellFormed("Mismatched end tag");
        _open.RemoveAt(_open.Count - 1);
        _bindings.RemoveRange(top.ScopeStart, _bindings.Count - top.ScopeStart);
        if (_open.Count == 0)
        {
            _state = State.TopLevel;
            _result = top.Element;
            return XmlItemKind.Element;
        }
        _state = State.Text;
        _brackets = 0;
        _crPending = false;
        return XmlItemKind.NeedMoreData;
    }
}
