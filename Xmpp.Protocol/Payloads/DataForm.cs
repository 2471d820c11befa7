// XEP-0004: Data Forms.
using Xmpp.Protocol.Xml;

namespace Xmpp.Protocol.Payloads;

/// <summary>An XEP-0004 data form (jabber:x:data) read from or written to an <c>&lt;x/&gt;</c> element.</summary>
public sealed class DataForm
{
    /// <summary>Creates an empty form of a type (form, submit, cancel or result).</summary>
    public DataForm(string type) => Type = type;

    /// <summary>The form type attribute: form, submit, cancel or result.</summary>
    public string Type { get; }

    /// <summary>The fields in document order.</summary>
    public List<DataFormField> Fields { get; } = [];

    /// <summary>The value of the hidden FORM_TYPE field (XEP-0068), or null.</summary>
    public string? FormType => Value("FORM_TYPE");

    /// <summary>The field with this var, or null.</summary>
    public DataFormField? Field(string var) => Fields.Find(f => f.Var == var);

    /// <summary>The first value of the field with this var, or null.</summary>
    public string? Value(string var) => Field(var)?.Value;

    /// <summary>Adds a field and returns this form for chaining.</summary>
    public DataForm Add(string var, string? type, string? label, params string[] values) =>
        AddWithOptions(var, type, label, values, []);

    /// <summary>Adds a field with the options a list-single or list-multi offers.</summary>
    public DataForm AddWithOptions(string var, string? type, string? label, IReadOnlyList<string> values, IReadOnlyList<string> options)
    {
        Fields.Add(new DataFormField(var, type, label, values, options));
        return this;
    }

    /// <summary>Reads a form; null when the element is not a jabber:x:data x element or a field lacks its var (XEP-0004 §3.2).</summary>
    public static DataForm? Parse(Element? x)
    {
        if (x is null || !x.Is("x", Ns.DataForms)) return null;
        var form = new DataForm(x.Attr("type") ?? "form");
        foreach (var f in x.Elements("field", Ns.DataForms))
        {
            var type = f.Attr("type");
            var var = f.Attr("var");
            if (var is null)
            {
                if (type == "fixed") continue; // fixed fields are labels and need no var
                return null;
            }
            var values = f.Elements("value", Ns.DataForms).Select(v => v.Text).ToList();
            var options = f.Elements("option", Ns.DataForms).Select(o => o.ChildText("value", Ns.DataForms) ?? "").ToList();
            form.Fields.Add(new DataFormField(var, type, f.Attr("label"), values, options));
        }
        return form;
    }

    /// <summary>Writes the form as an <c>&lt;x xmlns='jabber:x:data'/&gt;</c> element.</summary>
    public Element ToElement()
    {
        var x = new Element("x", Ns.DataForms).SetAttr("type", Type);
        foreach (var f in Fields)
        {
            var field = new Element("field", Ns.DataForms).SetAttr("var", f.Var).SetAttr("type", f.Type).SetAttr("label", f.Label);
            foreach (var v in f.Values)
                field.Add(new Element("value", Ns.DataForms).SetText(v));
            foreach (var o in f.Options)
                field.Add(new Element("option", Ns.DataForms).Add(new Element("value", Ns.DataForms).SetText(o)));
            x.Add(field);
        }
        return x;
    }

    /// <summary>XEP-0004 §3.3: "1" and "true" are true, "0" and "false" are false; anything else is null.</summary>
    public static bool? ParseBoolean(string? value) => value switch
    {
        "1" or "true" => true,
        "0" or "false" => false,
        _ => null,
    };
}
