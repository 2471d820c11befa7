// XEP-0004: Data Forms, the subset servers need: read a submitted form's fields, build a form or result.
using Xmpp.Protocol.Xml;

namespace Xmpp.Protocol.Payloads;

/// <summary>A view over an XEP-0004 &lt;x xmlns='jabber:x:data'/&gt; element with helpers to read and build fields.</summary>
public sealed class DataForm
{
    /// <summary>Wraps an existing form element.</summary>
    public DataForm(Element x) => Element = x;

    /// <summary>Starts a new form of the given type (form, submit, result, cancel) with an optional FORM_TYPE.</summary>
    public DataForm(string type, string? formType = null)
    {
        Element = new Element("x", Ns.DataForms).SetAttr("type", type);
        if (formType is not null) AddField("FORM_TYPE", "hidden", formType);
    }

    /// <summary>The underlying &lt;x/&gt; element.</summary>
    public Element Element { get; }

    /// <summary>The form's type attribute (form, submit, cancel, result).</summary>
    public string? Type => Element.Attr("type");

    /// <summary>The value of the hidden FORM_TYPE field, or null (XEP-0068).</summary>
    public string? FormType => Value("FORM_TYPE");

    /// <summary>Finds the first data form child of an element, or null.</summary>
    public static DataForm? In(Element parent) => parent.Child("x", Ns.DataForms) is { } x ? new DataForm(x) : null;

    /// <summary>The names of all fields present in the form.</summary>
    public IEnumerable<string> FieldNames =>
        Element.Elements("field", Ns.DataForms).Select(f => f.Attr("var")).OfType<string>();

    /// <summary>True when the form carries a field with this name.</summary>
    public bool Has(string var) => Field(var) is not null;

    /// <summary>All values of a field, empty when the field is absent.</summary>
    public IReadOnlyList<string> Values(string var) =>
        Field(var)?.Elements("value", Ns.DataForms).Select(v => v.Text).ToList() ?? [];

    /// <summary>The first value of a field, or null when the field or its value is absent.</summary>
    public string? Value(string var) => Field(var)?.Child("value", Ns.DataForms)?.Text;

    /// <summary>A boolean field per XEP-0004 §3.3 ("1"/"true" or "0"/"false"); null when absent, false when malformed is reported by <paramref name="valid"/>.</summary>
    public bool? Bool(string var, out bool valid)
    {
        valid = true;
        var v = Value(var);
        switch (v?.Trim())
        {
            case null: return null;
            case "1" or "true": return true;
            case "0" or "false": return false;
            default: valid = false; return null;
        }
    }

    /// <summary>Adds a field with a type, optional label and values.</summary>
    public DataForm AddField(string var, string? type, params string[] values) => AddField(var, type, null, values);

    /// <summary>Adds a field with a type, label and values, returning the form for chaining.</summary>
    public DataForm AddField(string var, string? type, string? label, IEnumerable<string> values, IEnumerable<(string Label, string Value)>? options = null)
    {
        var field = new Element("field", Ns.DataForms).SetAttr("var", var);
        if (type is not null) field.SetAttr("type", type);
        if (label is not null) field.SetAttr("label", label);
        foreach (var value in values) field.Add(new Element("value", Ns.DataForms).SetText(value));
        if (options is not null)
            foreach (var (l, v) in options)
                field.Add(new Element("option", Ns.DataForms).SetAttr("label", l).Add(new Element("value", Ns.DataForms).SetText(v)));
        Element.Add(field);
        return this;
    }

    /// <summary>Adds a boolean field with value "1" or "0".</summary>
    public DataForm AddBool(string var, string? label, bool value) => AddField(var, "boolean", label, [value ? "1" : "0"]);

    private Element? Field(string var)
    {
        foreach (var f in Element.Elements("field", Ns.DataForms))
            if (f.Attr("var") == var) return f;
        return null;
    }
}
