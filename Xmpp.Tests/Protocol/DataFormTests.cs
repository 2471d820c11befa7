using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Protocol;

/// XEP-0004 data form reading and building.
[TestFixture]
public sealed class DataFormTests
{
    [TestCase("1", true, true)]
    [TestCase("true", true, true)]
    [TestCase("0", false, true)]
    [TestCase("false", false, true)]
    [TestCase("yes", null, false)]
    public void Boolean_fields_follow_xep_0004_section_3_3(string value, bool? expected, bool valid)
    {
        var form = new DataForm(X.Parse($"<x xmlns='jabber:x:data' type='submit'><field var='b'><value>{value}</value></field></x>"));
        Assert.That(form.Bool("b", out var ok), Is.EqualTo(expected));
        Assert.That(ok, Is.EqualTo(valid));
        Assert.That(form.Bool("absent", out var absentOk), Is.Null);
        Assert.That(absentOk, Is.True);
    }

    [Test]
    public void Built_form_reads_back_its_type_form_type_and_values()
    {
        var built = new DataForm("form", "urn:example:form")
            .AddField("multi", "text-multi", "Lines", ["a", "b"])
            .AddBool("flag", "Flag", true);
        var form = DataForm.In(new Xmpp.Protocol.Xml.Element("query", "urn:example").Add(built.Element))!;
        Assert.That(form.Type, Is.EqualTo("form"));
        Assert.That(form.FormType, Is.EqualTo("urn:example:form"));
        Assert.That(form.Values("multi"), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(form.Value("flag"), Is.EqualTo("1"));
        Assert.That(form.FieldNames, Is.EqualTo(new[] { "FORM_TYPE", "multi", "flag" }));
        Assert.That(form.Has("missing"), Is.False);
        Assert.That(form.Values("missing"), Is.Empty);
        Assert.That(built.Element.Namespace, Is.EqualTo(Ns.DataForms));
    }
}
