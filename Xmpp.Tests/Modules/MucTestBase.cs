using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// A shared server and helpers for XEP-0045 tests: each test uses its own room, so tests do not see each other.
public abstract class MucTestBase
{
    protected const string Service = "conference.localhost";
    protected static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);
    protected static readonly string[] Users = ["alice", "bob", "carol", "dave", "eve"];
    private static int _roomSeq;

    protected TestServer Server = null!;
    private readonly List<TestClient> _clients = [];

    protected virtual void Configure(Dictionary<string, string?> o) { }

    [OneTimeSetUp]
    public async Task StartServer()
    {
        Server = await TestServer.StartAsync(configure: Configure);
        foreach (var u in Users) await Server.AddUserAsync(u, u + "-pw");
    }

    [OneTimeTearDown]
    public async Task StopServer() => await Server.DisposeAsync();

    [TearDown]
    public async Task CloseClients()
    {
        foreach (var c in _clients) await c.DisposeAsync();
        _clients.Clear();
    }

    protected static string NewRoom(string prefix = "room") => $"{prefix}{Interlocked.Increment(ref _roomSeq)}@{Service}";

    protected async Task<TestClient> Connect(string user, string resource = "pc")
    {
        var c = await TestClient.ConnectAsync(Server, user, user + "-pw", resource, sendPresence: true);
        _clients.Add(c);
        return c;
    }

    public static IReadOnlyList<int> Codes(Element stanza) =>
        stanza.Child("x", Ns.MucUser)?.Elements("status", Ns.MucUser).Select(s => int.Parse(s.Attr("code")!)).ToList() ?? [];

    protected static Element? Item(Element presence) => presence.Child("x", Ns.MucUser)?.Child("item", Ns.MucUser);

    protected static string? ErrorCondition(Element stanza) =>
        stanza.Child("error", Ns.Client)?.Elements().FirstOrDefault(e => e.Namespace == Ns.StanzaErrors && e.Name != "text")?.Name;

    protected static bool IsSelfPresence(Element e, string occupantJid) =>
        e.Name == "presence" && e.Attr("from") == occupantJid && (e.Attr("type") == "error" || Codes(e).Contains(110));

    /// Sends the MUC join presence and returns our own presence (with 110) or the error presence.
    public static async Task<Element> JoinAsync(TestClient c, string room, string nick, string inner = "", string? status = null)
    {
        var occupant = room + "/" + nick;
        var statusXml = status is null ? "" : $"<status>{status}</status>";
        await c.SendAsync($"<presence to='{occupant}'>{statusXml}<x xmlns='http://jabber.org/protocol/muc'>{inner}</x></presence>");
        return await c.ReceiveAsync(e => e.Name == "presence" && (e.Attr("type") == "error" && e.Attr("from")?.StartsWith(room, StringComparison.Ordinal) == true
            || e.Attr("type") != "error" && Codes(e).Contains(110) && e.Attr("from")!.StartsWith(room + "/", StringComparison.Ordinal)));
    }

    /// Joins and waits for the empty or set subject, the end of the join sequence.
    public static async Task<Element> JoinFullyAsync(TestClient c, string room, string nick, string inner = "")
    {
        var self = await JoinAsync(c, room, nick, inner);
        Assert.That(self.Attr("type"), Is.Not.EqualTo("error"), self.ToString());
        await ReceiveSubjectAsync(c, room);
        return self;
    }

    public static Task<Element> ReceiveSubjectAsync(TestClient c, string room) =>
        c.ReceiveAsync(e => e.Name == "message" && e.Child("subject", Ns.Client) is not null && e.Child("body", Ns.Client) is null
            && e.Attr("from")!.StartsWith(room, StringComparison.Ordinal));

    /// Creates a room and accepts the default configuration (XEP-0045 §10.1.2 instant room).
    public static async Task CreateInstantAsync(TestClient owner, string room, string nick = "owner")
    {
        var self = await JoinFullyAsync(owner, room, nick);
        Assert.That(Codes(self), Does.Contain(201));
        var r = await owner.IqAsync($"<iq type='set' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
    }

    /// Submits a muc#roomconfig form with the given fields and returns the reply.
    public static Task<Element> ConfigureAsync(TestClient owner, string room, params (string Var, string Value)[] fields)
    {
        var xml = string.Concat(fields.Select(f => $"<field var='{f.Var}'><value>{System.Security.SecurityElement.Escape(f.Value)}</value></field>"));
        return owner.IqAsync($"<iq type='set' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>" +
            $"<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roomconfig</value></field>{xml}</x></query></iq>");
    }

    public static Task<Element> AdminAsync(TestClient c, string room, string itemXml, string type = "set") =>
        c.IqAsync($"<iq type='{type}' to='{room}'><query xmlns='http://jabber.org/protocol/muc#admin'>{itemXml}</query></iq>");

    protected static Task<Element> GroupchatAsync(TestClient c, string room, string body) =>
        SendThen(c, $"<message to='{room}' type='groupchat'><body>{body}</body></message>");

    private static async Task<Element> SendThen(TestClient c, string xml)
    {
        await c.SendAsync(xml);
        return X.Parse(xml);
    }

    protected static Task<Element> ReceiveBodyAsync(TestClient c, string body) =>
        c.ReceiveAsync(e => e.Name == "message" && e.ChildText("body", Ns.Client) == body);

    /// Sends a XEP-0313 query to a room (form fields as "var=value", an optional RSM set) and returns the forwarded
    /// result messages (the &lt;result/&gt; wrappers) and the iq answer.
    protected static async Task<(List<Element> Results, Element Iq)> RoomArchiveAsync(TestClient c, string room, string[]? fields = null, string? rsm = null)
    {
        var queryId = "q" + Guid.NewGuid().ToString("N");
        var form = "";
        if (fields is not null)
            form = "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" +
                string.Concat(fields.Select(f => f.Split('=', 2)).GroupBy(p => p[0]).Select(g =>
                    $"<field var='{g.Key}'>{string.Concat(g.Select(p => $"<value>{System.Security.SecurityElement.Escape(p[1])}</value>"))}</field>")) + "</x>";
        var set = rsm is null ? "" : $"<set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set>";
        var iqId = "mam-" + queryId;
        await c.SendAsync($"<iq type='set' id='{iqId}' to='{room}'><query xmlns='urn:xmpp:mam:2' queryid='{queryId}'>{form}{set}</query></iq>");
        var results = new List<Element>();
        // XEP-0313 §4.2: every result arrives before the iq answer, which ends the query.
        while (true)
        {
            var e = await c.ReceiveAsync(e => e.Name == "message" && e.Child("result", Ns.Mam)?.Attr("queryid") == queryId
                || e.Name == "iq" && e.Attr("id") == iqId, TimeSpan.FromSeconds(30));
            if (e.Name == "iq") return (results, e);
            results.Add(e.Child("result", Ns.Mam)!);
        }
    }

    /// Sends a groupchat message and returns the stanza-id the room gave it, as the watcher received it.
    protected static async Task<string> SayAsync(TestClient sender, TestClient watcher, string room, string body)
    {
        await GroupchatAsync(sender, room, body);
        return (await ReceiveBodyAsync(watcher, body)).Child("stanza-id", Ns.StanzaId)!.Attr("id")!;
    }

    protected static Element Forwarded(Element result) => result.Child("forwarded", Ns.Forward)!.Child("message", Ns.Client)!;

    protected static async Task<string> PersistentRoomAsync(TestClient owner, string nick, params (string Var, string Value)[] more)
    {
        var room = NewRoom();
        await CreateInstantAsync(owner, room, nick);
        var r = await ConfigureAsync(owner, room, [("muc#roomconfig_persistentroom", "1"), .. more]);
        Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
        return room;
    }

    protected static Task<Element> ReceivePresenceFrom(TestClient c, string from, string? type = null) =>
        c.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == from && e.Attr("type") == type);
}
