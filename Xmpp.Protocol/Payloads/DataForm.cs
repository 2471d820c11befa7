// XEP-0004: Data Forms, as far as servers need them: read a submitted form, build a blank form or a result.
using System.Diagnostics.CodeAnalysis;
using Xmpp.Protocol.Xml;

namespace Xmpp.Protocol.Payloads;

/// <summary>
/// A view over one &lt;x xmlns='jabber:x:data'/&gt; element. Forms from the wire go through <see cref="Parse"/>, which
/// checks the XEP-0004 §3.2 rules, so each field name occurs once; forms the server sends are built with the
/// constructor and the Add methods, and read back the same way.
/// </summary>
public sealed class DataForm
{
    private DataForm(Element x) => Element = x;

    /// <summary>Starts a new form of the given type (form, submit, result, cancel) with an optional hidden FORM_TYPE.</summary>
    public DataForm(string type, string? formType = null)
    {
        Element = new Element("x", Ns.DataForms).SetAttr("type", type);
        if (formType is not null) AddField(Field("FORM_TYPE", "hidden", formType));
    }

    /// <summary>The underlying &lt;x/&gt; element.</summary>
    public Element Element { get; }

    /// <summary>The form's 'type' attribute: form, submit, cancel or result.</summary>
    public string Type => Element.Attr("type") ?? "";

    /// <summary>The value of the hidden FORM_TYPE field (XEP-0068), or null when the form has none.</summary>
    public string? FormType => Value("FORM_TYPE");

    /// <summary>The names of all fields with a 'var', in document order, FORM_TYPE included.</summary>
    public IEnumerable<string> FieldNames =>
        Element.Elements("field", Ns.DataForms).Select(f => f.Attr("var")).OfType<string>();

    /// <summary>True when the form carries a field with this name.</summary>
    public bool Has(string var) => FindField(var) is not null;

    /// <summary>All values of a field, empty when the field is absent.</summary>
    public IReadOnlyList<string> Values(string var) =>
        FindField(var)?.Elements("value", Ns.DataForms).Select(v => v.Text).ToList() ?? [];

    /// <summary>The first value of a field, or null when the field is absent or has no value.</summary>
    public string? Value(string var) => FindField(var)?.Child("value", Ns.DataForms)?.Text;

    /// <summary>A boolean field per XEP-0004 §3.3 ("1"/"true" or "0"/"false"): null when absent; a malformed value
    /// gives null with <paramref name="valid"/> false.</summary>
    public bool? Bool(string var, out bool valid)
    {
        valid = true;
        switch (Value(var)?.Trim())
        {
            case null: return null;
            case "1" or "true": return true;
            case "0" or "false": return false;
            default: valid = false; return null;
        }
    }

    /// <summary>Reads an &lt;x xmlns='jabber:x:data'/&gt; element. A missing type, a field without 'var' (other than
    /// 'fixed') or a repeated 'var' is a FormatException (XEP-0004 §3.2).</summary>
    public static DataForm Parse(Element x)
    {
        if (!x.Is("x", Ns.DataForms)) throw new FormatException("not a jabber:x:data form");
        if (x.Attr("type") is null) throw new FormatException("a data form needs a type");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var field in x.Elements("field", Ns.DataForms))
        {
            var var = field.Attr("var");
            if (var is null)
            {
                if (field.Attr("type") == "fixed") continue;
                throw new FormatException("a data form field needs a var");
            }
            if (!seen.Add(var)) throw new FormatException($"field '{var}' appears twice");
        }
        return new DataForm(x);
    }

    /// <summary>Like <see cref="Parse"/>, with the reason in <paramref name="problem"/> instead of an exception.</summary>
    public static bool TryParse(Element x, [NotNullWhen(true)] out DataForm? form, [NotNullWhen(false)] out string? problem)
    {
        try
        {
            form = Parse(x);
            problem = null;
            return true;
        }
        catch (FormatException ex)
        {
            form = null;
            problem = ex.Message;
            return false;
        }
    }

    /// <summary>The first data form child of an element, parsed; null when there is none.</summary>
    public static DataForm? In(Element parent) => parent.Child("x", Ns.DataForms) is { } x ? Parse(x) : null;

    /// <summary>Builds one &lt;field/&gt; with an optional type and its values, for fields that need more children
    /// (XEP-0122 validation) before <see cref="AddField(Element)"/>.</summary>
    public static Element Field(string var, string? type, params string[] values)
    {
        var field = new Element("field", Ns.DataForms).SetAttr("var", var);
        if (type is not null) field.SetAttr("type", type);
        foreach (var value in values) field.Add(new Element("value", Ns.DataForms).SetText(value));
        return field;
    }

    /// <summary>Adds a field built with <see cref="Field"/>, returning the form for chaining.</summary>
    public DataForm AddField(Element field)
    {
        Element.Add(field);
        return this;
    }

    /// <summary>Adds a field with a type and values.</summary>
    public DataForm AddField(string var, string? type, params string[] values) => AddField(Field(var, type, values));

    /// <summary>Adds a field with a type, label, values and the options of a list field.</summary>
    public DataForm AddField(string var, string? type, string? label, IEnumerable<string> values, IEnumerable<(string Label, string Value)>? options = null)
    {
        var field = Field(var, type, [.. values]);
        if (label is not null) field.SetAttr("label", label);
        if (options is not null)
            foreach (var (l, v) in options)
                field.Add(new Element("option", Ns.DataForms).SetAttr("label", l).Add(new Element("value", Ns.DataForms).SetText(v)));
        return AddField(field);
    }

    /// <summary>Adds a boolean field with value "1" or "0".</summary>
    public DataForm AddBool(string var, string? label, bool value) => AddField(var, "boolean", label, [value ? "1" : "0"]);

    private Element? FindField(string var)
    {
        foreach (var f in Element.Elements("field", Ns.DataForms))
            if (f.Attr("var") == var) return f;
        return null;
    }
}
