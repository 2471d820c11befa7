using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Http.WebClients;

namespace Xmpp.Fuzz;

/// XEP-0004 data forms (Xmpp.Protocol/Payloads/DataForm.cs): every jabber:x:data &lt;x/&gt; found in the parsed
/// elements is read with TryParse (Parse only throws FormatException), and an accepted form answers every accessor
/// without throwing. Input: elements as a client sends them after the stream header.
public static class DataFormHarness
{
    public static void Run(byte[] data)
    {
        FuzzAssert.WithinAllocationBound(data.Length, () => { Read(data); return 0; });
    }

    private static void Read(byte[] data)
    {
        if (XmlHarness.ClientElements(data) is not { } elements) return;
        foreach (var e in elements) Visit(e);
    }

    private static void Visit(Element e)
    {
        if (e.Name == "x") Form(e);
        foreach (var child in e.Elements()) Visit(child);
    }

    private static void Form(Element x)
    {
        bool ok = DataForm.TryParse(x, out var form, out var problem);
        try
        {
            _ = DataForm.Parse(x);
            FuzzAssert.True(ok, "Parse accepted what TryParse refused");
        }
        catch (FormatException)
        {
            FuzzAssert.True(!ok && problem is not null, "Parse refused what TryParse accepted");
        }
        if (form is null) return;
        _ = form.Type;
        _ = form.FormType;
        foreach (var name in form.FieldNames)
        {
            FuzzAssert.True(form.Has(name), $"field '{name}' is listed but not found");
            _ = form.Values(name);
            _ = form.Value(name);
            var b = form.Bool(name, out var valid);
            FuzzAssert.True(valid || b is null, "an invalid boolean with a value");
        }
        // A form found inside its parent reads the same way.
        var parent = new Element("query", "urn:fuzz").Add(x.Clone());
        FuzzAssert.True(DataForm.In(parent) is not null, "DataForm.In did not find the form");
    }
}
