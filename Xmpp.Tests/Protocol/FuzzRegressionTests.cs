using System.Text;
using Xmpp.Fuzz;
using Xmpp.Protocol;

namespace Xmpp.Tests.Protocol;

/// Inputs the fuzzers (fuzz/) once failed on, each a named case that failed before its fix. The raw findings are kept
/// in fuzz/corpus/HARNESS/ too, where FuzzCorpusTests replays them through the harness.
[TestFixture]
public sealed class FuzzRegressionTests
{
    // fuzz/run-all.sh 300, 2026-12-07, harness xml (fuzz/corpus/xml/regress-pi-target-name-start-before-length): a
    // processing-instruction target (or an end tag's name) that starts with a digit and runs past MaxNameLength. Whole, the parser saw the
    // long name first (policy-violation); split, it saw the bad first byte first (not-well-formed). The first byte
    // is now checked first, so every split gives not-well-formed.
    [TestCase("<?1.DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD?>")]
    [TestCase("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><a></9" + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx>")]
    public void A_bad_first_name_byte_is_not_well_formed_however_the_input_is_split(string input)
    {
        var data = Encoding.UTF8.GetBytes(input);
        for (int chunk = 1; chunk <= data.Length; chunk++)
            Assert.That(XmlHarness.ParseAll(data, chunk).Error, Is.EqualTo(StreamErrors.NotWellFormed), $"{chunk}-byte chunks");
    }

    [Test]
    public void The_xml_finding_of_2026_12_07_passes_the_harness()
    {
        var data = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "fuzz-corpus", "xml", "regress-pi-target-name-start-before-length"));
        Assert.DoesNotThrow(() => XmlHarness.Run(data));
    }
}
