using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Xmpp.Storage;
using Xmpp.Storage.LiteDb;
using Xmpp.Storage.Postgres;

namespace Xmpp.Server.Hosting;

/// Opens the storage Xmpp:Storage:Provider names. The PostgreSQL paths sit in methods of their own that are never
/// inlined: the runtime loads Npgsql's assembly only when one of them runs, so the embedded default never loads it.
public static class StorageFactory
{
    public static IStorage Open(XmppServerOptions options, ILoggerFactory? loggers = null) =>
        options.Storage.IsPostgreSql
            ? OpenPostgres(options.Storage.ConnectionString, loggers)
            : new LiteDbStorage(Path.GetFullPath(options.DataDir));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static IStorage OpenPostgres(string connectionString, ILoggerFactory? loggers) =>
        // At start-up, before any connection is served: waiting here holds nothing else up.
        PostgresStorage.OpenAsync(connectionString, loggers?.CreateLogger("Xmpp.Storage.Postgres")).GetAwaiter().GetResult();

    /// What `xmppd check` says about the storage: one line, and whether it is a problem.
    public static (bool Ok, string Line) Check(XmppServerOptions options) =>
        options.Storage.IsPostgreSql
            ? CheckPostgres(options.Storage.ConnectionString)
            : (true, $"storage: embedded in {Path.GetFullPath(options.DataDir)}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (bool Ok, string Line) CheckPostgres(string connectionString) =>
        PostgresStorage.CheckAsync(connectionString).GetAwaiter().GetResult();

    /// Config problems of the storage section, one line each (the connection itself is `xmppd check`'s business).
    public static IEnumerable<string> Validate(StorageOptions storage)
    {
        if (storage.IsPostgreSql)
        {
            if (string.IsNullOrWhiteSpace(storage.ConnectionString))
                yield return "Xmpp:Storage:ConnectionString is required with Provider postgresql (or set XMPP__STORAGE__CONNECTIONSTRING).";
            else if (ConnectionStringProblem(storage.ConnectionString) is { } problem)
                yield return "Xmpp:Storage:ConnectionString: " + problem;
        }
        else if (!string.Equals(storage.Provider, StorageOptions.Embedded, StringComparison.OrdinalIgnoreCase))
        {
            yield return $"Xmpp:Storage:Provider: '{storage.Provider}' is not embedded or postgresql.";
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static string? ConnectionStringProblem(string connectionString) => PostgresStorage.ConnectionStringProblem(connectionString);
}
