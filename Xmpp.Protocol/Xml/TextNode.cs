namespace Xmpp.Protocol.Xml;

/// <summary>Character data inside an element, stored unescaped.</summary>
public sealed class TextNode(string value) : Node
{
    /// <summary>The unescaped text.</summary>
    public string Value { get; set; } = value;

    /// <inheritdoc />
    public override Node CloneNode() => new TextNode(Value);
}
