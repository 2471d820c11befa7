namespace Xmpp.Server.Hosting;

/// Where the server keeps its data (Xmpp:Storage).
public sealed class StorageOptions
{
    public const string Embedded = "embedded";
    public const string PostgreSql = "postgresql";

    /// "embedded" (LiteDB and the archive logs under DataDir: one binary, nothing to install) or "postgresql" (every
    /// store in one PostgreSQL database, for those who run and back up PostgreSQL anyway, and for several nodes).
    public string Provider { get; set; } = Embedded;

    /// Npgsql connection string for "postgresql", e.g. "Host=db;Port=5432;Database=xmpp;Username=xmpp;Password=...";
    /// best given in the environment (XMPP__STORAGE__CONNECTIONSTRING) rather than a file. Its password is never logged.
    public string ConnectionString { get; set; } = "";

    public bool IsPostgreSql => string.Equals(Provider, PostgreSql, StringComparison.OrdinalIgnoreCase);
}
