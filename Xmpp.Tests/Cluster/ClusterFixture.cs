namespace Xmpp.Tests.Cluster;

/// A test fixture on three cluster nodes: started once for the fixture by StartAsync, stopped after its last test; a
/// failed test prints every node's log.
public abstract class ClusterFixture
{
    protected ClusterNodes Cluster { get; private set; } = null!;

    protected abstract Task<ClusterNodes> StartAsync();

    [OneTimeSetUp]
    public async Task StartCluster() => Cluster = await StartAsync();

    [OneTimeTearDown]
    public async Task StopCluster()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
    }

    [TearDown]
    public void ShowLogsOnFailure()
    {
        if (TestContext.CurrentContext.Result.Outcome.Status == NUnit.Framework.Interfaces.TestStatus.Failed)
            TestContext.Out.WriteLine(Cluster.Logs());
    }
}
