using Xmpp.Storage;

namespace Xmpp.Tests.Storage;

// Base of the store contracts: a fresh storage per test, disposed afterwards.
public abstract class StorageContract
{
    protected IStorage Storage { get; private set; } = null!;

    protected abstract IStorage CreateStorage();

    protected virtual void CleanUp()
    {
    }

    [SetUp]
    public void CreateStorageForTest() => Storage = CreateStorage();

    [TearDown]
    public async Task DisposeStorageAfterTest()
    {
        await Storage.DisposeAsync();
        CleanUp();
    }
}
