namespace Xmpp.Protocol.Xml;

/// <summary>An attribute as written on the wire: qualified name (for example <c>xml:lang</c>) and unescaped value.</summary>
public readonly record struct XmlAttribute(string Name, string Value);
