namespace Xmpp.Protocol.Xml;

/// <summary>A piece of XML content: an element or a run of character data.</summary>
public abstract class Node
{
    /// <summary>Returns a deep copy of this node.</summary>
    public abstract Node CloneNode();
}
