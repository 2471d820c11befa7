// XEP-0004: Data Forms, as far as servers read submitted forms and offer blank ones.
using Xmpp.Protocol.Xml;

namespace Xmpp.Protocol.Payloads;

/// <summary>A XEP-0004 form reduced to its type and each field's values, keyed by the field's 'var'.</summary>
public sealed class DataForm
{
    private DataForm(string type, Dictionary<string, IReadOnlyList<string>> fields)
    {
        Type = type;
        Fields = fields;
    }

    /// <summary>The form's 'type' attribute: form, submit, cancel or result.</summary>
    public string Type { get; }

    /// <summary>Every field with a 'var', in no particular order, including FORM_TYPE.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Fields { get; }

    /// <summary>The value of the hidden FORM_TYPE field (XEP-0068), or null when the form has none.</summary>
    public string? FormType => Fields.TryGetValue("FORM_TYPE", out var v) && v.Count > 0 ? v[0] : null;

    /// <summary>The first value of a field, or null when the field is absent or empty.</summary>
    public string? Value(string var) => Fields.TryGetValue(var, out var v) && v.Count > 0 ? v[0] : null;

    /// <summary>Reads an &lt;x xmlns='jabber:x:data'/&gt; element; a field without 'var' (other than 'fixed') or a repeated 'var' is a FormatException (XEP-0004 §3.2).</summary>
    public static DataForm Parse(Element x)
    {
        if (!x.Is("x", Ns.DataForms)) throw new FormatException("not a jabber:x:data form");
        var type = x.Attr("type") ?? throw new FormatException("a data form needs a type");
        var fields = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var field in x.Elements("field", Ns.DataForms))
        {
            var var = field.Attr("var");
            if (var is null)
            {
                if (field.Attr("type") == "fixed") continue;
                throw new FormatException("a data form field needs a var");
            }
            var values = field.Elements("value", Ns.DataForms).Select(v => v.Text).ToList();
            if (!fields.TryAdd(var, values)) throw new FormatException($"field '{var}' appears twice");
        }
        return new DataForm(type, fields);
    }

    /// <summary>Starts a form of the given type with its hidden FORM_TYPE field.</summary>
    public static Element Create(string type, string formType) =>
        new Element("x", Ns.DataForms).SetAttr("type", type).Add(Field("FORM_TYPE", "hidden", formType));

    /// <summary>Builds one &lt;field/&gt; with a type and optional values.</summary>
    public static Element Field(string var, string type, params string[] values)
    {
        var field = new Element("field", Ns.DataForms).SetAttr("var", var).SetAttr("type", type);
        foreach (var value in values) field.Add(new Element("value", Ns.DataForms).SetText(value));
        return field;
    }
}
