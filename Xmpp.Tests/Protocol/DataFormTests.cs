using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Protocol;

/// XEP-0004 data form reading and building: one type for the MUC's configuration forms and the MAM query form.
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
        var form = DataForm.Parse(X.Parse($"<x xmlns='jabber:x:data' type='submit'><field var='b'><value>{value}</value></field></x>"));
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
            .AddBool("flag", "Flag", true)
            .AddField(DataForm.Field("open", "list-multi").Add(new Xmpp.Protocol.Xml.Element("validate", Ns.DataFormsValidate)));
        var form = DataForm.In(new Xmpp.Protocol.Xml.Element("query", "urn:example").Add(built.Element))!;
        Assert.That(form.Type, Is.EqualTo("form"));
        Assert.That(form.FormType, Is.EqualTo("urn:example:form"));
        Assert.That(form.Values("multi"), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(form.Value("flag"), Is.EqualTo("1"));
        Assert.That(form.FieldNames, Is.EqualTo(new[] { "FORM_TYPE", "multi", "flag", "open" }));
        Assert.That(form.Has("missing"), Is.False);
        Assert.That(form.Values("missing"), Is.Empty);
        Assert.That(built.Element.Namespace, Is.EqualTo(Ns.DataForms));
        Assert.That(X.Matches(built.Element, "<x xmlns='jabber:x:data'><field var='FORM_TYPE' type='hidden'/><field var='open' type='list-multi'>"
            + "<validate xmlns='http://jabber.org/protocol/xdata-validate'/></field></x>"), built.Element.ToString());
    }

    [Test]
    public void A_submitted_form_gives_each_fields_values()
    {
        var form = DataForm.Parse(X.Parse("<x xmlns='jabber:x:data' type='submit'>" +
            "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" +
            "<field var='ids'><value>a</value><value>b</value></field><field var='empty'/><field type='fixed'><value>note</value></field></x>"));

        Assert.That(form.Type, Is.EqualTo("submit"));
        Assert.That(form.FormType, Is.EqualTo("urn:xmpp:mam:2"));
        Assert.That(form.Values("ids"), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(form.Value("empty"), Is.Null);
        Assert.That(form.FieldNames, Is.EqualTo(new[] { "FORM_TYPE", "ids", "empty" }));
    }

    [Test]
    public void A_form_child_is_found_and_its_absence_is_null()
    {
        Assert.That(DataForm.In(X.Parse("<query xmlns='urn:example'/>")), Is.Null);
        Assert.That(DataForm.In(X.Parse("<query xmlns='urn:example'><x xmlns='jabber:x:data' type='result'/></query>"))?.Type, Is.EqualTo("result"));
    }

    [TestCase("<x xmlns='jabber:x:data'/>")]
    [TestCase("<x xmlns='jabber:x:data' type='submit'><field><value>v</value></field></x>")]
    [TestCase("<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>")]
    [TestCase("<x xmlns='urn:example' type='submit'/>")]
    public void Malformed_forms_are_rejected(string xml)
    {
        Assert.That(() => DataForm.Parse(X.Parse(xml)), Throws.InstanceOf<FormatException>());
        Assert.That(DataForm.TryParse(X.Parse(xml), out var form, out var problem), Is.False);
        Assert.That(form, Is.Null);
        Assert.That(problem, Is.Not.Empty);
    }
}
