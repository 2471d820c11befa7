using Xmpp.Protocol.Payloads;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Protocol;

/// The XEP payload readers: XEP-0082 DateTime, XEP-0059 RSM requests, XEP-0004 submitted forms.
[TestFixture]
public sealed class PayloadTests
{
    [TestCase("2024-06-01T08:00:00Z", "2024-06-01T08:00:00.0000000+00:00")]
    [TestCase("2024-06-01T10:00:00+02:00", "2024-06-01T08:00:00.0000000+00:00")]
    [TestCase("2024-06-01T08:00:00.123Z", "2024-06-01T08:00:00.1230000+00:00")]
    [TestCase("2024-06-01T08:00:00.123456789Z", "2024-06-01T08:00:00.1234567+00:00")]
    [TestCase(" 2024-06-01T07:30:00-00:30 ", "2024-06-01T08:00:00.0000000+00:00")]
    public void DateTime_profile_values_parse_to_the_same_instant(string text, string utc)
    {
        Assert.That(DateTimeProfile.TryParse(text, out var value), Is.True);
        Assert.That(value.ToUniversalTime().ToString("O"), Is.EqualTo(utc));
    }

    [TestCase("2024-06-01T08:00:00")]
    [TestCase("2024-06-01")]
    [TestCase("2024-06-01 08:00:00Z")]
    [TestCase("2024-13-01T08:00:00Z")]
    [TestCase("2024-06-01T25:00:00Z")]
    [TestCase("yesterday")]
    [TestCase("")]
    [TestCase(null)]
    public void Anything_else_is_not_a_DateTime(string? text)
    {
        Assert.That(DateTimeProfile.TryParse(text, out _), Is.False);
    }

    [Test]
    public void DateTime_is_written_in_utc_with_milliseconds()
    {
        Assert.That(DateTimeProfile.Format(new DateTimeOffset(2024, 6, 1, 10, 0, 0, 5, TimeSpan.FromHours(2))), Is.EqualTo("2024-06-01T08:00:00.005Z"));
    }

    [TestCase("<set xmlns='http://jabber.org/protocol/rsm'/>", null, null, null, null)]
    [TestCase("<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>a</after></set>", 10, "a", null, null)]
    [TestCase("<set xmlns='http://jabber.org/protocol/rsm'><max> 5 </max><before/></set>", 5, null, "", null)]
    [TestCase("<set xmlns='http://jabber.org/protocol/rsm'><before>b</before><index>3</index></set>", null, null, "b", 3)]
    public void Rsm_requests_are_read(string xml, int? max, string? after, string? before, int? index)
    {
        Assert.That(ResultSetRequest.Parse(X.Parse(xml)), Is.EqualTo(new ResultSetRequest(max, after, before, index)));
    }

    [TestCase("<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>")]
    [TestCase("<set xmlns='http://jabber.org/protocol/rsm'><max>99999999999</max></set>")]
    [TestCase("<set xmlns='http://jabber.org/protocol/rsm'><index>x</index></set>")]
    [TestCase("<set xmlns='http://jabber.org/protocol/rsm'><after/></set>")]
    [TestCase("<set xmlns='urn:example'/>")]
    public void Malformed_rsm_requests_are_rejected(string xml)
    {
        Assert.That(() => ResultSetRequest.Parse(X.Parse(xml)), Throws.InstanceOf<FormatException>());
    }
}
