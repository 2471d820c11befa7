namespace Xmpp.Protocol.Xml;

/// <summary>Bounds the parser enforces while reading, so a peer cannot make the server buffer or nest without end.</summary>
public sealed record ParserLimits
{
    /// <summary>Largest top-level element (or stream header) in bytes, counted from its '&lt;' to its final '&gt;'.</summary>
    public int MaxStanzaBytes { get; init; } = 256 * 1024;

    /// <summary>Deepest element nesting inside the stream root; a top-level stanza is at depth 1.</summary>
    public int MaxDepth { get; init; } = 48;

    /// <summary>Most attributes, namespace declarations included, on one element.</summary>
    public int MaxAttributes { get; init; } = 64;

    /// <summary>Longest qualified element or attribute name in UTF-8 bytes.</summary>
    public int MaxNameLength { get; init; } = 256;

    /// <summary>The limits used when none are given.</summary>
    public static ParserLimits Default { get; } = new();
}
