using System.Buffers;
using System.Text;

namespace Xmpp.Protocol.Xml;

/// <summary>A light, mutable XML element: local name, resolved namespace, attributes and ordered child nodes.</summary>
public sealed class Element : Node
{
    private List<XmlAttribute>? _attributes;
    private List<Node>? _nodes;

    // An element with a single child keeps it here without a node list: its text (a string: a <body/>, most leaves,
    // without a TextNode either) or its one child element (a <message/> with its <body/>, an <iq/> with its payload).
    // Meaningful only while _nodes is null; the node list is made on demand (Nodes, or a second child).
    private object? _only;

    /// <summary>Creates an element with a local name in a namespace (empty string for none).</summary>
    public Element(string name, string ns = "")
    {
        Name = name;
        Namespace = ns;
    }

    /// <summary>The local name, without prefix.</summary>
    public string Name { get; }

    /// <summary>The namespace URI the element is in, after prefix resolution.</summary>
    public string Namespace { get; set; }

    /// <summary>Attributes in document order; namespace declarations other than the default one are kept here.</summary>
    public IReadOnlyList<XmlAttribute> Attributes => (IReadOnlyList<XmlAttribute>?)_attributes ?? Array.Empty<XmlAttribute>();

    /// <summary>Child nodes (elements and text) in document order.</summary>
    public IReadOnlyList<Node> Nodes => (IReadOnlyList<Node>?)MaterializedNodes() ?? Array.Empty<Node>();

    // The node list, made from _only when the element has a single child. Readers on several threads may race here (a
    // delivered stanza is written and archived at once): the first list stored wins and all of them return it.
    private List<Node>? MaterializedNodes()
    {
        var nodes = Volatile.Read(ref _nodes);
        if (nodes is not null || _only is null) return nodes;
        var made = new List<Node>(2) { _only as Node ?? new TextNode((string)_only) };
        return Interlocked.CompareExchange(ref _nodes, made, null) ?? made;
    }

    // Before a change of the content (single-threaded, as every change of an element is).
    private List<Node> NodesForChange()
    {
        var nodes = MaterializedNodes() ?? (_nodes = new List<Node>(2));
        _only = null;
        return nodes;
    }

    // The lists themselves, for the serializer: a foreach over the IReadOnlyList properties boxes an enumerator, and
    // every stanza written (delivered, archived) walks each of its elements' attributes and children.
    internal List<XmlAttribute>? AttributeList => _attributes;

    internal List<Node>? NodeList => _nodes;

    /// For the serializer and ChildElements: the single child when there is no node list, else null.
    internal string? OnlyText => _nodes is null ? _only as string : null;

    internal Element? OnlyChild => _nodes is null ? _only as Element : null;

    /// <summary>True when the element has neither child elements nor text.</summary>
    public bool IsEmpty => _nodes is null ? _only is null : _nodes.Count == 0;

    /// <summary>Returns the value of the attribute with this qualified name, or null.</summary>
    public string? Attr(string name)
    {
        if (_attributes is null) return null;
        foreach (var a in _attributes)
            if (a.Name == name) return a.Value;
        return null;
    }

    /// <summary>Sets (or with null removes) an attribute and returns this element for chaining.</summary>
    public Element SetAttr(string name, string? value)
    {
        if (_attributes is not null)
        {
            for (int i = 0; i < _attributes.Count; i++)
            {
                if (_attributes[i].Name != name) continue;
                if (value is null) _attributes.RemoveAt(i);
                else _attributes[i] = new XmlAttribute(name, value);
                return this;
            }
        }
        if (value is not null) (_attributes ??= new List<XmlAttribute>(4)).Add(new XmlAttribute(name, value));
        return this;
    }

    /// <summary>Appends a child node and returns this element for chaining.</summary>
    public Element Add(Node node)
    {
        if (_nodes is null && _only is null && node is Element child) _only = child;
        else NodesForChange().Add(node);
        return this;
    }

    /// <summary>Appends child nodes, skipping nulls, and returns this element.</summary>
    public Element Add(params Node?[] nodes)
    {
        foreach (var n in nodes)
            if (n is not null) Add(n);
        return this;
    }

    /// <summary>Appends character data and returns this element for chaining.</summary>
    public Element AddText(string text)
    {
        if (text.Length == 0) return this;
        if (_nodes is null && _only is not Element)
        {
            _only = _only is string before ? before + text : text;
            return this;
        }
        if (_nodes is { Count: > 0 } && _nodes[^1] is TextNode last) last.Value += text;
        else Add(new TextNode(text));
        return this;
    }

    /// <summary>Replaces all children with a single text node (or nothing, for null or empty).</summary>
    public Element SetText(string? text)
    {
        _nodes?.Clear();
        if (_nodes is null) _only = string.IsNullOrEmpty(text) ? null : text;
        else if (!string.IsNullOrEmpty(text)) Add(new TextNode(text));
        return this;
    }

    /// <summary>Removes a child node; returns whether it was present.</summary>
    public bool Remove(Node node)
    {
        if (_nodes is not null) return _nodes.Remove(node);
        // A text node is only had from Nodes, which made the list: here only a single child element can match.
        if (!ReferenceEquals(_only, node)) return false;
        _only = null;
        return true;
    }

    /// <summary>Removes every child element that matches the name and namespace.</summary>
    public int RemoveAll(string name, string ns)
    {
        if (_nodes is not null) return _nodes.RemoveAll(n => n is Element e && e.Name == name && e.Namespace == ns);
        if (_only is not Element only || !only.Is(name, ns)) return 0;
        _only = null;
        return 1;
    }

    /// <summary>Removes all child nodes.</summary>
    public void ClearNodes()
    {
        _nodes?.Clear();
        _only = null;
    }

    /// <summary>The concatenated direct character data of this element.</summary>
    public string Text
    {
        get
        {
            if (_nodes is null) return _only as string ?? string.Empty;
            string? single = null;
            StringBuilder? sb = null;
            foreach (var n in _nodes)
            {
                if (n is not TextNode t) continue;
                if (single is null) single = t.Value;
                else (sb ??= new StringBuilder(single)).Append(t.Value);
            }
            return sb?.ToString() ?? single ?? string.Empty;
        }
    }

    /// <summary>Child elements in order.</summary>
    public ChildElements Elements() => new(_nodes, OnlyChild, null, null);

    /// <summary>Child elements with this name and namespace.</summary>
    public ChildElements Elements(string name, string ns) => new(_nodes, OnlyChild, name, ns);

    /// <summary>The first child element with this name and namespace, or null.</summary>
    public Element? Child(string name, string ns)
    {
        if (_nodes is null) return _only is Element only && only.Name == name && only.Namespace == ns ? only : null;
        foreach (var n in _nodes)
            if (n is Element e && e.Name == name && e.Namespace == ns) return e;
        return null;
    }

    /// <summary>The first child element in a namespace, whatever its name, or null.</summary>
    public Element? ChildIn(string ns)
    {
        if (_nodes is null) return _only is Element only && only.Namespace == ns ? only : null;
        foreach (var n in _nodes)
            if (n is Element e && e.Namespace == ns) return e;
        return null;
    }

    /// <summary>The first child element, or null.</summary>
    public Element? FirstElement
    {
        get
        {
            if (_nodes is null) return _only as Element;
            foreach (var n in _nodes)
                if (n is Element e) return e;
            return null;
        }
    }

    /// <summary>The text of the first child with this name and namespace, or null when absent.</summary>
    public string? ChildText(string name, string ns) => Child(name, ns)?.Text;

    /// <summary>True when this element has the given name and namespace.</summary>
    public bool Is(string name, string ns) => Name == name && Namespace == ns;

    /// <summary>Returns a deep copy.</summary>
    public Element Clone()
    {
        var copy = new Element(Name, Namespace);
        if (_attributes is not null) copy._attributes = new List<XmlAttribute>(_attributes);
        if (_nodes is null) copy._only = _only is Element only ? only.Clone() : _only;
        else
        {
            copy._nodes = new List<Node>(_nodes.Count);
            foreach (var n in _nodes) copy._nodes.Add(n.CloneNode());
        }
        return copy;
    }

    /// <inheritdoc />
    public override Node CloneNode() => Clone();

    /// <summary>Writes this element as UTF-8 into the writer; <paramref name="defaultNs"/> is the default namespace in scope.</summary>
    public void WriteTo(IBufferWriter<byte> writer, string defaultNs = Ns.Client) => ElementWriter.Write(writer, this, defaultNs);

    /// <summary>Serializes to a string with this element's namespace declared, for logs and tests.</summary>
    public override string ToString()
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        ElementWriter.Write(buffer, this, defaultNs: "\u0000");
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
