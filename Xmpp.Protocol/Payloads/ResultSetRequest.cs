// XEP-0059: Result Set Management.
using System.Globalization;
using Xmpp.Protocol.Xml;

namespace Xmpp.Protocol.Payloads;

/// <summary>
/// An RSM request (XEP-0059 §2): Before is null when absent and empty for an empty &lt;before/&gt; (the last page);
/// After and Index are null when absent.
/// </summary>
public sealed record ResultSetRequest(int? Max, string? After, string? Before, int? Index)
{
    /// <summary>Reads a &lt;set xmlns='http://jabber.org/protocol/rsm'/&gt;; a max or index that is not a non-negative integer is a FormatException.</summary>
    public static ResultSetRequest Parse(Element set)
    {
        if (!set.Is("set", Ns.Rsm)) throw new FormatException("not an RSM set");
        var after = set.Child("after", Ns.Rsm)?.Text;
        if (after is { Length: 0 }) throw new FormatException("<after/> needs an id"); // XEP-0059 §2.2: after names an item
        return new ResultSetRequest(Number(set, "max"), after, set.Child("before", Ns.Rsm)?.Text, Number(set, "index"));
    }

    private static int? Number(Element set, string name)
    {
        var text = set.ChildText(name, Ns.Rsm);
        if (text is null) return null;
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            throw new FormatException($"<{name}/> must be a non-negative integer");
        return n;
    }

    /// <summary>Builds the response &lt;set/&gt; (XEP-0059 §2.6): first and last only for a non-empty page, count always.</summary>
    public static Element Response(string? first, int? firstIndex, string? last, int count)
    {
        var set = new Element("set", Ns.Rsm);
        if (first is not null)
        {
            var f = new Element("first", Ns.Rsm).SetText(first);
            if (firstIndex is { } index) f.SetAttr("index", index.ToString(CultureInfo.InvariantCulture));
            set.Add(f);
        }
        if (last is not null) set.Add(new Element("last", Ns.Rsm).SetText(last));
        set.Add(new Element("count", Ns.Rsm).SetText(count.ToString(CultureInfo.InvariantCulture)));
        return set;
    }
}
