using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Cluster;

/// The per-session delivery rules (HookPoint.DeliverToSession) hold on the node that holds the session, whichever node
/// routed the stanza: the same test runs with the sender on another node and on the receiver's own node. And the
/// offline spool, handed over at initial presence, reaches one resource once when two log in at once on two nodes.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class ClusterSessionHookTests : ClusterFixture
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(500);

    protected override Task<ClusterNodes> StartAsync() =>
        ClusterNodes.StartAsync(["romeo", "juliet", "benedick", "beatrice", "orsino", .. Enumerable.Range(0, SpoolAccounts).Select(i => $"viola{i}")]);

    private const int SpoolAccounts = 6;
    private const int Spooled = 10;

    /// A ping round trip: the stream has handled everything this client sent before it, nonzas included.
    private static async Task Settle(TestClient c) =>
        await c.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");

    /// What arrived from the contact within the quiet window.
    private static async Task<List<Element>> From(TestClient c, string contactBare) =>
        (await c.DrainAsync(Quiet)).Where(e => e.Attr("from")?.StartsWith(contactBare + "/", StringComparison.Ordinal) == true).ToList();

    // Phone on node 2 (index 1); the contact on node 1 (routed over the bus) or on node 2 itself (routed locally).
    [TestCase(0, "romeo", "juliet", TestName = "A CSI-inactive phone gets a message from another node at once and that node's presence updates only when active")]
    [TestCase(1, "benedick", "beatrice", TestName = "A CSI-inactive phone gets a message from its own node at once and presence updates only when active")]
    public async Task Csi_rules_apply_on_the_node_that_holds_the_session(int contactNode, string user, string contact)
    {
        await using var phone = await Cluster.ConnectAsync(1, user, "phone");
        await using var balcony = await Cluster.ConnectAsync(contactNode, contact, "balcony");
        string contactBare = contact + "@localhost", contactFull = contactBare + "/balcony";
        // No waiting until each node has learnt of the other's session: a node that does not know it yet asks the
        // shared directory before storing the request for later (docs/cluster-seams.md, the replication window).
        // The phone follows the contact's presence (RFC 6121 §3.1); with the approval comes the contact's current
        // presence, which also shows the contact's node knows the phone's session.
        await phone.IqAsync("<iq type='get'><query xmlns='jabber:iq:roster'/></iq>");
        await phone.SendAsync($"<presence to='{contactBare}' type='subscribe'/>");
        await balcony.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") == "subscribe", TimeSpan.FromSeconds(10));
        await balcony.SendAsync($"<presence to='{user}@localhost' type='subscribed'/>");
        await phone.ReceiveAsync(e => e.Name == "presence" && e.Attr("type") is null && e.Attr("from") == contactFull, TimeSpan.FromSeconds(10));
        await phone.DrainAsync(Quiet);

        // XEP-0352 §4: the phone goes into the pocket.
        await phone.SendRawAsync("<inactive xmlns='urn:xmpp:csi:0'/>");
        await Settle(phone);
        await balcony.SendAsync("<presence><show>away</show></presence>");
        await balcony.SendAsync("<presence><show>dnd</show><status>do not disturb</status></presence>");
        await balcony.SendAsync($"<message to='{user}@localhost/phone' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await Settle(balcony);
        Assert.That(await From(phone, contactBare), Is.Empty, "presence updates and a typing notification wait while inactive");

        // A message with a body passes at once (and makes the typing notification before it obsolete).
        await balcony.SendAsync($"<message to='{user}@localhost' type='chat' id='m1'><body>Art thou not Romeo?</body></message>");
        var first = await phone.ReceiveAsync(e => e.Attr("from") == contactFull, TimeSpan.FromSeconds(10));
        Assert.That((first.Name, first.Attr("id")), Is.EqualTo(("message", "m1")), "the message with a body comes first, alone");
        Assert.That(await From(phone, contactBare), Is.Empty, "the held presence stays held");

        // <active/>: the held presence, only the latest per contact resource; the typing notification is gone.
        await phone.SendRawAsync("<active xmlns='urn:xmpp:csi:0'/>");
        var held = await From(phone, contactBare);
        Assert.That(held.Select(e => e.Name), Is.EqualTo(new[] { "presence" }), "one presence, no chat state");
        Assert.That(held[0].ChildText("show", Ns.Client), Is.EqualTo("dnd"));

        // Active again: presence flows at once.
        await balcony.SendAsync("<presence><show>chat</show></presence>");
        var now = await phone.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == contactFull, TimeSpan.FromSeconds(5));
        Assert.That(now.ChildText("show", Ns.Client), Is.EqualTo("chat"));
    }

    // XEP-0160 §4: spooled messages are handed over once. Two resources of one account log in at the same moment, on
    // n2 and n3 through their own c2s ports, with the same messages spooled: on one node the account's gate lets the
    // first drain deliver and delete them and the second find the spool empty, and across nodes the cluster lock does.
    // Six accounts at once, each one pair of logins released together, so the two drains overlap as much as they can.
    [Test]
    public async Task Two_resources_logging_in_at_once_on_two_nodes_get_each_spooled_message_once_between_them_in_order()
    {
        // The nodes write no plain SET in steady state but the drain's lock (SET NX PX): Redis counts them.
        await using var admin = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(Cluster.Redis.ConnectionString + ",allowAdmin=true");
        var redis = admin.GetDatabase();
        async Task<long> LockAttempts()
        {
            var stats = (string)(await redis.ExecuteAsync("INFO", "commandstats"))!;
            var line = stats.Split('\n').FirstOrDefault(l => l.StartsWith("cmdstat_set:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split("calls=")[1].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        long before = await LockAttempts();
        await using (var orsino = await Cluster.ConnectAsync(0, "orsino", "desk"))
        {
            // XEP-0198 §4: the acknowledgement of the messages waits until the spool writes have committed.
            await orsino.SendAsync("<enable xmlns='urn:xmpp:sm:3'/>");
            await orsino.ReceiveAsync(e => e.Name == "enabled");
            for (int k = 0; k < Spooled; k++)
                for (int i = 0; i < SpoolAccounts; i++)
                    await orsino.SendAsync(ClusterSteps.Chat($"viola{i}@localhost", $"v{i}-{k:D2}"));
            await orsino.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
            var acked = await orsino.ReceiveAsync(e => e.Name == "a" && e.Namespace == "urn:xmpp:sm:3", TimeSpan.FromSeconds(20));
            Assert.That(acked.Attr("h"), Is.EqualTo((Spooled * SpoolAccounts).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
        var results = await Task.WhenAll(Enumerable.Range(0, SpoolAccounts).Select(async i =>
        {
            // Bound, not yet available: nothing is handed over before initial presence (RFC 6121 §4.2.2).
            var binding = new[] { Cluster.ConnectAsync(1, $"viola{i}", "n2", presence: false), Cluster.ConnectAsync(2, $"viola{i}", "n3", presence: false) };
            await using var onN2 = await binding[0];
            await using var onN3 = await binding[1];
            await Task.WhenAll(onN2.SendAsync("<presence/>"), onN3.SendAsync("<presence/>"));
            int total = 0;
            long lastArrival = Environment.TickCount64;
            async Task<List<string>> Collect(TestClient c)
            {
                var got = new List<string>();
                // Until every message is in on one of the two, then half a second more for a second copy.
                var deadline = Environment.TickCount64 + 10_000;
                while (Environment.TickCount64 < deadline)
                {
                    if (await c.TryReceiveAsync(e => e.Name == "message" && ClusterSteps.Body(e)?.StartsWith($"v{i}-", StringComparison.Ordinal) == true,
                            TimeSpan.FromMilliseconds(100)) is { } m)
                    {
                        got.Add(ClusterSteps.Body(m)!);
                        Interlocked.Increment(ref total);
                        Interlocked.Exchange(ref lastArrival, Environment.TickCount64);
                    }
                    else if (Volatile.Read(ref total) >= Spooled && Environment.TickCount64 - Interlocked.Read(ref lastArrival) > 500) break;
                }
                return got;
            }
            var both = await Task.WhenAll(Collect(onN2), Collect(onN3));
            return (Account: i, N2: both[0], N3: both[1]);
        }));
        var wrong = new List<string>();
        foreach (var (account, n2, n3) in results)
        {
            var all = n2.Concat(n3).Order(StringComparer.Ordinal).ToList();
            var expected = Enumerable.Range(0, Spooled).Select(k => $"v{account}-{k:D2}").ToList();
            bool inOrder = n2.SequenceEqual(n2.Order(StringComparer.Ordinal)) && n3.SequenceEqual(n3.Order(StringComparer.Ordinal));
            if (!all.SequenceEqual(expected) || !inOrder)
                wrong.Add($"viola{account}: n2 got {n2.Count} [{string.Join(" ", n2)}], n3 got {n3.Count} [{string.Join(" ", n3)}]");
        }
        Assert.That(wrong, Is.Empty, $"each of the {Spooled} spooled messages once, in order, to one resource or the other");
        long drained = await LockAttempts();
        // Logins with an empty spool (most logins) take no lock: no Redis round trip for it.
        await Task.WhenAll(Enumerable.Range(0, SpoolAccounts).Select(async i =>
        {
            await using var again = await Cluster.ConnectAsync(1 + i % 2, $"viola{i}", "again");
            await again.ReceiveAsync(e => e.Name == "presence" && e.Attr("from") == again.Jid!.ToString(), TimeSpan.FromSeconds(10));
            await Settle(again);
        }));
        await Task.Delay(200);
        long empty = await LockAttempts() - drained;
        TestContext.Out.WriteLine($"lock attempts (SET NX): {drained - before} for {2 * SpoolAccounts} logins with a full spool, {empty} for {SpoolAccounts} with an empty one");
        Assert.That(empty, Is.Zero, "a login with an empty spool takes no cluster lock");
    }
}
