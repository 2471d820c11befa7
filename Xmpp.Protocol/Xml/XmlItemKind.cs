namespace Xmpp.Protocol.Xml;

/// <summary>What one call of <see cref="XmppStreamParser.Parse"/> produced.</summary>
public enum XmlItemKind
{
    /// <summary>All bytes were taken into the parser's state and no item is complete yet.</summary>
    NeedMoreData,

    /// <summary>The opening <c>&lt;stream:stream&gt;</c> tag, returned as an element that is never closed.</summary>
    StreamHeader,

    /// <summary>One complete child of the stream root (a stanza or a negotiation element).</summary>
    Element,

    /// <summary>The closing <c>&lt;/stream:stream&gt;</c> tag.</summary>
    StreamEnd,
}
