using System.Net;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Tests.Support;
using static Xmpp.Tests.Cluster.ClusterSteps;

namespace Xmpp.Tests.Cluster;

/// Issue 17, "done when": clients connected through HAProxy keep working while cluster nodes are killed (kill -9) and
/// restarted under them. Three real cluster nodes (PostgreSQL, Redis) behind a real HAProxy in TCP mode with PROXY v2
/// and /ready checks; twice, the node holding the receiver is killed while the sender (on another node, with stream
/// management) keeps sending: the receiver reconnects through HAProxy to a live node and gets every acknowledged message
/// live, from the offline spool or from MAM, none twice; the killed node is started again and HAProxy takes it back.
[TestFixture, Category("Cluster"), NonParallelizable]
public sealed class ClusterBehindHaproxyTests
{
    private static readonly IPAddress AnnAddress = IPAddress.Parse("127.0.0.7");
    private static readonly IPAddress BenAddress = IPAddress.Parse("127.0.0.8");
    private ClusterNodes _cluster = null!;
    private HaproxyInstance _haproxy = null!;

    [SetUp]
    public async Task Start()
    {
        _cluster = await ClusterNodes.StartAsync(behindBalancer: true, "ann", "ben");
        _haproxy = await HaproxyInstance.StartAsync(
            _cluster.Nodes.Select(n => new HaproxyBackend(n.Id, n.Endpoint.C2sPort, n.Endpoint.C2sTlsPort, n.HttpPort)).ToList());
        foreach (var n in _cluster.Nodes) await _haproxy.WaitForStateAsync(n.Id, "UP", TimeSpan.FromSeconds(20));
    }

    [TearDown]
    public async Task Stop()
    {
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed)
            TestContext.Out.WriteLine(_cluster.Logs() + "\n---- haproxy ----\n" + _haproxy.Log);
        _haproxy.Dispose();
        await _cluster.DisposeAsync();
    }

    private Task<TestClient> ConnectThroughBalancerAsync(string user, IPAddress from, string resource) =>
        TestClient.ConnectAsync(_haproxy.Endpoint(from), user, ClusterNodes.Password, resource, sendPresence: true);

    /// Which node holds the account's session, from the nodes' session records in Redis.
    private async Task<int> NodeHoldingAsync(string bare)
    {
        var db = await _cluster.RedisDatabaseAsync();
        for (int attempt = 0; attempt < 100; attempt++)
        {
            for (int i = 0; i < _cluster.Nodes.Length; i++)
                foreach (var field in await db.HashKeysAsync("xmpp:sessions:" + _cluster.Nodes[i].Id))
                    if (field.ToString().Contains(bare, StringComparison.Ordinal)) return i;
            await Task.Delay(50);
        }
        throw new AssertionException($"no node lists a session of {bare}");
    }

    [Test]
    public async Task Clients_through_haproxy_keep_chatting_while_the_receivers_node_is_killed_and_restarted_twice()
    {
        var ann = await ConnectThroughBalancerAsync("ann", AnnAddress, "phone");
        var ben = await ConnectThroughBalancerAsync("ben", BenAddress, "phone");
        try
        {
            // leastconn sends the two clients to two different empty nodes.
            int annNode = await NodeHoldingAsync("ann@localhost"), benNode = await NodeHoldingAsync("ben@localhost");
            Assert.That(benNode, Is.Not.EqualTo(annNode), "HAProxy's leastconn put both clients on one node");
            await ann.SendAsync("<enable xmlns='urn:xmpp:sm:3'/>");
            await ann.ReceiveAsync(e => e.Name == "enabled");
            int sent = 0, handled = 0;
            var received = new List<string>();
            for (int round = 0; round < 2; round++)
            {
                Assert.That(benNode, Is.Not.EqualTo(annNode), "the receiver shares the sender's node");
                await UntilReachableAsync(ann, ben, TimeSpan.FromSeconds(15));
                var live = new List<string>();
                var liveIds = new Dictionary<string, string?>();
                var reading = Task.Run(async () =>
                {
                    try
                    {
                        while (true)
                        {
                            var e = await ben.ReceiveAsync(m => m.Name == "message" && Body(m)?.StartsWith("m", StringComparison.Ordinal) == true, TimeSpan.FromSeconds(60));
                            lock (live)
                            {
                                live.Add(Body(e)!);
                                liveIds[Body(e)!] = ArchiveId(e, "ben@localhost");
                            }
                        }
                    }
                    catch (IOException) { }        // the killed node's connection ended
                    catch (TimeoutException) { }
                    catch (ObjectDisposedException) { }
                });
                int killAt = sent + 10;
                string killed = _cluster.Nodes[benNode].Id;
                // 20 messages a second; the receiver's node dies after 10 of them, the sender goes on for lease + 2 s.
                var clock = System.Diagnostics.Stopwatch.StartNew();
                TimeSpan? killedAt = null;
                while (killedAt is null || clock.Elapsed - killedAt < TimeSpan.FromSeconds(ClusterNodes.LeaseSeconds + 2))
                {
                    await ann.SendAsync(Chat("ben@localhost", "m" + sent));
                    sent++;
                    if (sent == killAt)
                    {
                        _cluster.Nodes[benNode].Process!.KillHard();
                        killedAt = clock.Elapsed;
                    }
                    await Task.Delay(50);
                }
                await ann.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
                var a = await ann.ReceiveAsync(e => e.Name == "a" && e.Namespace == "urn:xmpp:sm:3", TimeSpan.FromSeconds(20));
                // h counts every stanza ann sent since <enable/>: the headlines of UntilReachableAsync too.
                handled = int.Parse(a.Attr("h")!);
                await reading;
                await ben.DisposeAsync();

                // ben's client reconnects through the same HAProxy address: it must land on a live node.
                await _haproxy.WaitForStateAsync(killed, "DOWN", TimeSpan.FromSeconds(10));
                ben = await ConnectThroughBalancerAsync("ben", BenAddress, "phone");
                int newNode = await NodeHoldingAsync("ben@localhost");
                Assert.That(newNode, Is.Not.EqualTo(benNode), "HAProxy sent the reconnecting client to the dead node");
                var spooled = (await ben.DrainAsync(TimeSpan.FromSeconds(2)))
                    .Where(e => e.Name == "message" && Body(e)?.StartsWith("m", StringComparison.Ordinal) == true).ToList();
                var offline = spooled.Select(e => Body(e)!).ToList();
                var offlineIds = spooled.GroupBy(e => Body(e)!).ToDictionary(g => g.Key, g => ArchiveId(g.First(), "ben@localhost"));
                var archived = await ArchivedFromAsync(ben, "ann@localhost");
                var roundBodies = Enumerable.Range(killAt - 10, sent - (killAt - 10)).Select(i => "m" + i).ToList();
                var missing = roundBodies.Except(live).Except(offline).Except(archived).ToList();
                TestContext.Out.WriteLine($"round {round}: killed {killed}; sent {roundBodies.Count}, live {live.Count}, offline {offline.Count}, " +
                                          $"only in MAM {roundBodies.Except(live).Except(offline).Count()}, both live and spooled {live.Intersect(offline).Count()}; ben now on {_cluster.Nodes[newNode].Id}");
                Assert.That(live, Is.Unique);
                Assert.That(offline, Is.Unique);
                // A node may die after writing a message to ben's stream and before confirming it to the sender, which
                // then spools it too: allowed only with the same stanza-id (XEP-0359), by which the client recognises it.
                Assert.That(UnrecognisableDuplicates(liveIds, offlineIds), Is.Empty, "a message delivered both live and from the spool without the same stanza-id");
                Assert.That(roundBodies.Except(live).Except(offline), Is.Empty, "every message the dead node did not deliver went to the offline spool, not only to MAM");
                Assert.That(offline, Is.Not.Empty, "messages sent after the node was declared dead went to the offline spool");
                Assert.That(missing, Is.Empty, "acknowledged messages neither received nor archived");
                received.AddRange(live);
                received.AddRange(offline.Except(live)); // a recognisable duplicate counts once

                // The killed node comes back and HAProxy takes it in again; the chat goes on both ways.
                await _cluster.StartNodeAsync(_cluster.Nodes[benNode]);
                await _haproxy.WaitForStateAsync(killed, "UP", TimeSpan.FromSeconds(20));
                await UntilReachableAsync(ben, ann, TimeSpan.FromSeconds(15));
                benNode = newNode;
            }
            Assert.That(handled, Is.GreaterThanOrEqualTo(sent), "the server acknowledged every message the sender sent");
            Assert.That(received, Is.Unique, "nothing delivered twice over both rounds");
        }
        finally
        {
            await ann.DisposeAsync();
            await ben.DisposeAsync();
        }
    }
}
