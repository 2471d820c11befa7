namespace Xmpp.Storage;

/// Work that may block its thread (a synchronous read that can wait for the embedded store's writer lock or for the
/// disk, a file read, a key derivation) runs on a thread-pool thread. With inline socket completions (opt-in,
/// Xmpp.Server/Hosting/InlineSocketCompletions.cs) our code runs on the runtime's socket engine threads (one per core),
/// and each of those serves a share of every connection: blocking one stalls them all, where a blocked pool thread only costs the pool a thread. Called on a pool thread, the work runs
/// there and then, without a hop or an allocation; called anywhere else it is queued to the pool, and the caller's
/// continuation then stays on the pool for the rest of that stanza's work.
public static class BlockingWork
{
    /// Whether the current thread is one that must not block (any thread the pool does not own).
    public static bool MustLeave => !Thread.CurrentThread.IsThreadPoolThread;

    public static ValueTask<TResult> Run<TState, TResult>(TState state, Func<TState, TResult> work) =>
        MustLeave ? new(Task.Run(() => work(state))) : new(work(state));

    /// Awaited at the start of an async method whose work may block: continues on a pool thread (at once when already
    /// on one).
    public static PoolHop ToPool() => default;

    public readonly struct PoolHop : System.Runtime.CompilerServices.ICriticalNotifyCompletion
    {
        public PoolHop GetAwaiter() => this;
        public bool IsCompleted => !MustLeave;
        public void GetResult() { }
        public void OnCompleted(Action continuation) => ThreadPool.QueueUserWorkItem(static c => c(), continuation, preferLocal: false);
        public void UnsafeOnCompleted(Action continuation) => ThreadPool.UnsafeQueueUserWorkItem(static c => c(), continuation, preferLocal: false);
    }
}
