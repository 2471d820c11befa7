using Microsoft.Extensions.DependencyInjection;
using Xmpp.Protocol;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// Issue 18: with archiving on, a message reaches its recipient without waiting for the archive write. The write is
/// queued (its durability is what an XEP-0198 ack or the sender's next IQ waits for); the delivery must not be.
[TestFixture]
public sealed class MamLatencyPathTests
{
    [Test]
    public async Task Juliet_receives_romeos_message_while_both_archive_writes_are_still_held()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = new HeldArchiveWrites(gate.Task);
        await using var server = await TestServer.StartAsync(
            configure: o => o["Xmpp:Mam:DefaultMode"] = "always",
            services: s => held.Wrap(s));
        await server.AddUserAsync("romeo", "romeo-pw");
        await server.AddUserAsync("juliet", "juliet-pw");
        await using var romeo = await TestClient.ConnectAsync(server, "romeo", "romeo-pw", "phone", sendPresence: true);
        await using var juliet = await TestClient.ConnectAsync(server, "juliet", "juliet-pw", "phone", sendPresence: true);

        await romeo.SendAsync("<message to='juliet@localhost' type='chat' id='m1'><body>But soft!</body></message>");
        var message = await juliet.ReceiveAsync(e => e.Name == "message" && e.Attr("id") == "m1", TimeSpan.FromSeconds(10));
        Assert.That(message.ChildText("body", Ns.Client), Is.EqualTo("But soft!"));
        // XEP-0313 §3.5: the stanza-id the archive will hold is stamped before delivery, without waiting for the write.
        Assert.That(message.Child("stanza-id", Ns.StanzaId)?.Attr("by"), Is.EqualTo("juliet@localhost"));
        Assert.That(held.Waiting, Is.EqualTo(2), "the sender's and the recipient's archive writes are both still held");

        gate.SetResult();
        // Once let through, both writes are stored.
        var archive = held.Inner!.Archive("mam");
        Assert.That(await Wait.UntilAsync(async () => await archive.CountAsync("juliet") == 1 && await archive.CountAsync("romeo") == 1),
            Is.True, "the held archive writes were stored once released");
    }

    /// The server's storage with the "mam" archive's appends held until the gate opens.
    private sealed class HeldArchiveWrites(Task gate)
    {
        private int _waiting;

        public IStorage? Inner { get; private set; }

        public int Waiting => Volatile.Read(ref _waiting);

        public void Wrap(IServiceCollection services)
        {
            var original = services.Last(d => d.ServiceType == typeof(IStorage));
            services.Remove(original);
            services.AddSingleton<IStorage>(sp =>
            {
                Inner = (IStorage)original.ImplementationFactory!(sp);
                return new Storage(Inner, this);
            });
        }

        private sealed class Storage(IStorage inner, HeldArchiveWrites held) : IStorage
        {
            public IAccountStore Accounts => inner.Accounts;
            public IRosterStore Rosters => inner.Rosters;
            public IKeyValueStore KeyValue => inner.KeyValue;
            public IUploadStore Uploads => inner.Uploads;
            public Task FlushAsync() => inner.FlushAsync();
            public int PendingWrites => inner.PendingWrites;
            public StorageStall? Stall => inner.Stall;
            public ValueTask DisposeAsync() => inner.DisposeAsync();

            public IArchiveStore Archive(string collection) =>
                collection == "mam" ? new Archive(inner.Archive(collection), held) : inner.Archive(collection);
        }

        private sealed class Archive(IArchiveStore inner, HeldArchiveWrites held) : IArchiveStore
        {
            public async ValueTask<long> AppendAsync(string owner, DateTimeOffset stamp, string with, ReadOnlyMemory<byte> payload, string? stanzaId = null)
            {
                Interlocked.Increment(ref held._waiting);
                await held.Gate.WaitAsync(TimeSpan.FromSeconds(30));
                Interlocked.Decrement(ref held._waiting);
                return await inner.AppendAsync(owner, stamp, with, payload, stanzaId);
            }

            public ValueTask<ArchivePage> QueryAsync(ArchiveQuery query) => inner.QueryAsync(query);
            public ValueTask<long?> FindIdAsync(string owner, string stanzaId) => inner.FindIdAsync(owner, stanzaId);
            public ValueTask<bool> ReplaceAsync(string owner, long id, ReadOnlyMemory<byte> payload) => inner.ReplaceAsync(owner, id, payload);
            public ValueTask<int> DeleteThroughAsync(string owner, long id) => inner.DeleteThroughAsync(owner, id);
            public ValueTask<int> CountAsync(string owner) => inner.CountAsync(owner);
            public ValueTask DeleteAllAsync(string owner) => inner.DeleteAllAsync(owner);
        }

        public Task Gate => gate;
    }
}
