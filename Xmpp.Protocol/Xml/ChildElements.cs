using System.Collections;

namespace Xmpp.Protocol.Xml;

/// <summary>
/// An element's child elements, optionally only those with one name and namespace, in document order. A struct with a
/// struct enumerator, so a foreach over them allocates nothing (routing looks at several children of every stanza);
/// LINQ still works through IEnumerable. The list is read as it is while enumerating: do not change it meanwhile.
/// </summary>
public readonly struct ChildElements(List<Node>? nodes, Element? only, string? name, string? ns) : IEnumerable<Element>
{
    public Enumerator GetEnumerator() => new(nodes, only, name, ns);

    IEnumerator<Element> IEnumerable<Element>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// nodes: the element's node list; only: its single child element when it has no list (see Element).
    public struct Enumerator(List<Node>? nodes, Element? only, string? name, string? ns) : IEnumerator<Element>
    {
        private int _index = -1;

        public Element Current { get; private set; } = null!;

        object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            if (nodes is null)
            {
                if (only is null || ++_index > 0 || (name is not null && !(only.Name == name && only.Namespace == ns))) return false;
                Current = only;
                return true;
            }
            while (++_index < nodes.Count)
            {
                if (nodes[_index] is Element e && (name is null || (e.Name == name && e.Namespace == ns)))
                {
                    Current = e;
                    return true;
                }
            }
            return false;
        }

        public void Reset() => _index = -1;

        public readonly void Dispose() { }
    }
}
