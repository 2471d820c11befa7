using Xmpp.Fuzz;

namespace Xmpp.Tests.Protocol;

/// Replays every file of fuzz/corpus/HARNESS/ through that harness, uninstrumented: the seeds stay valid inputs for
/// afl-fuzz (a seed that crashes stops it before it starts), and an input a fuzzer once crashed on, kept there after
/// its fix, is checked on every run. Crashes found are also pinned as named cases in FuzzRegressionTests.cs.
[TestFixture]
public class FuzzCorpusTests
{
    private static string CorpusRoot => Path.Combine(AppContext.BaseDirectory, "fuzz-corpus");

    private static IEnumerable<TestCaseData> CorpusFiles() =>
        Directory.EnumerateDirectories(CorpusRoot).Order(StringComparer.Ordinal)
            .SelectMany(dir => Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal))
            .Select(file => new TestCaseData(Path.GetFileName(Path.GetDirectoryName(file)!), Path.GetFileName(file))
                .SetName($"Corpus file {{0}}/{{1}} passes its harness"));

    [TestCaseSource(nameof(CorpusFiles))]
    public void Corpus_file_passes_its_harness(string harness, string file)
    {
        Assert.That(Harnesses.All, Does.ContainKey(harness), "every corpus folder is named after a harness");
        var input = File.ReadAllBytes(Path.Combine(CorpusRoot, harness, file));
        Assert.DoesNotThrow(() => Harnesses.All[harness](input));
    }

    [Test]
    public void Every_harness_has_a_seed_corpus()
    {
        foreach (var harness in Harnesses.All.Keys)
            Assert.That(Directory.Exists(Path.Combine(CorpusRoot, harness)) && Directory.EnumerateFiles(Path.Combine(CorpusRoot, harness)).Any(),
                Is.True, $"fuzz/corpus/{harness}/ has seeds");
    }

    // The harness must be able to fail: a broken invariant escapes as FuzzInvariantException, which afl-fuzz records
    // as a crash. A truncated SCRAM seed still only fails the exchange, so it passes; the check itself must throw.
    [Test]
    public void A_broken_invariant_escapes_the_harness_as_a_crash()
    {
        Assert.Throws<FuzzInvariantException>(() => FuzzAssert.True(false, "broken"));
        Assert.Throws<FuzzInvariantException>(() => FuzzAssert.WithinAllocationBound(0, () => new byte[FuzzAssert.FixedAllowance + 1]));
    }
}
