namespace Xmpp.Fuzz;

/// The harnesses by name. Each takes one input and returns normally or throws one of the errors its target documents,
/// which the harness catches; anything else escaping is a finding. The NUnit suite replays fuzz/corpus/NAME/* through
/// the same functions (Xmpp.Tests/Protocol/FuzzCorpusTests.cs).
public static class Harnesses
{
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>
    {
        ["xml"] = XmlHarness.Run,
        ["jid"] = JidHarness.Run,
        ["scram"] = ScramHarness.Run,
        ["sasl2"] = Sasl2Harness.Run,
        ["dataform"] = DataFormHarness.Run,
        ["websocket"] = WebSocketHarness.Run,
        ["bosh"] = BoshHarness.Run,
        ["upload"] = UploadHarness.Run,
        ["proxy"] = ProxyHeaderHarness.Run,
    };
}
