using Npgsql;
using Xmpp.Storage.Postgres;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// Xmpp:Storage:Provider as an operator meets it: the real binary run as a process, the connection string in the
/// environment, the password never printed, and the embedded default not loading the PostgreSQL provider at all.
[TestFixture]
[Category("PostgreSql")]
public sealed class PostgresHostingTests
{
    private readonly PostgresTestDatabase _database = new("hosting");
    private string _dir = null!;
    private int _c2s, _tls, _s2s;

    [SetUp]
    public async Task Prepare()
    {
        await _database.ResetAsync();
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-pg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        _c2s = TestServer.FreePort();
        _tls = TestServer.FreePort();
        _s2s = TestServer.FreePort();
    }

    [TearDown]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    private string[] Args(string provider) =>
    [
        "--storage", provider, "--domain", "localhost", "--c2s-port", _c2s.ToString(), "--c2s-tls-port", _tls.ToString(),
        "--data-dir", Path.Combine(_dir, "data"), "--cert-dir", Path.Combine(_dir, "certs"), "--listen", "127.0.0.1",
        "--http-port", "0", "--log-level", "Information", $"--Xmpp:S2s:Port={_s2s}",
    ];

    private async Task<Dictionary<string, string>> Environment(string? connectionString = null) =>
        new() { ["XMPP__STORAGE__CONNECTIONSTRING"] = connectionString ?? await _database.ConnectionStringAsync() };

    private static async Task<string> PasswordAsync() => (await PostgresInstance.GetAsync()).Password;

    [Test]
    public async Task Check_reports_a_working_connection_and_the_schema_version_without_the_password()
    {
        // check also wants a certificate for the domain.
        Assert.That((await ServerProcess.RunAsync(_dir, ["cert", "generate", "localhost", .. Args("embedded")])).ExitCode, Is.EqualTo(0));
        var before = await ServerProcess.RunAsync(_dir, await Environment(), ["check", .. Args("postgresql")]);
        Assert.That(before.ExitCode, Is.EqualTo(0), before.Output);
        Assert.That(before.Output, Does.Contain("storage: PostgreSQL at 127.0.0.1:").And.Contain("no schema yet"));

        var created = await ServerProcess.RunAsync(_dir, await Environment(), ["user", "add", "alice", "alice-password", .. Args("postgresql")]);
        Assert.That(created.ExitCode, Is.EqualTo(0), created.Output);
        var after = await ServerProcess.RunAsync(_dir, await Environment(), ["check", .. Args("postgresql")]);

        Assert.That(after.ExitCode, Is.EqualTo(0), after.Output);
        Assert.That(after.Output, Does.Contain($"schema version {PostgresSchema.Version}, current"));
        Assert.That(before.Output + created.Output + after.Output, Does.Not.Contain(await PasswordAsync()));
    }

    [Test]
    public async Task Check_with_a_wrong_password_is_a_problem_that_does_not_print_it()
    {
        var wrong = (await _database.ConnectionStringAsync()).Replace(await PasswordAsync(), "not-the-password-xyz");

        var result = await ServerProcess.RunAsync(_dir, await Environment(wrong), ["check", .. Args("postgresql")]);

        Assert.That(result.ExitCode, Is.EqualTo(1), result.Output);
        Assert.That(result.Output, Does.Contain("problem: storage: cannot connect to PostgreSQL at 127.0.0.1:"));
        Assert.That(result.Output, Does.Contain("password authentication failed"));
        Assert.That(result.Output, Does.Not.Contain("not-the-password-xyz"));
    }

    [Test]
    public async Task Postgresql_without_a_connection_string_is_a_config_problem()
    {
        var result = await ServerProcess.RunAsync(_dir, ["check", .. Args("postgresql")]);

        Assert.That(result.ExitCode, Is.EqualTo(1));
        Assert.That(result.Output, Does.Contain("Xmpp:Storage:ConnectionString is required"));
    }

    [Test]
    public async Task The_server_refuses_to_start_on_a_schema_newer_than_it_knows()
    {
        await using (var connection = new NpgsqlConnection(await _database.ConnectionStringAsync()))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                "CREATE TABLE IF NOT EXISTS schema_version (version int PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now()); " +
                "INSERT INTO schema_version (version) VALUES (999)", connection);
            await command.ExecuteNonQueryAsync();
        }

        var result = await ServerProcess.RunAsync(_dir, await Environment(), ["run", .. Args("postgresql")]);

        Assert.That(result.ExitCode, Is.EqualTo(3), result.Output);
        Assert.That(result.Output, Does.Contain($"error: storage: the PostgreSQL schema is at version 999, newer than this server knows ({PostgresSchema.Version})"));
        await using var cleanup = new NpgsqlConnection(await _database.ConnectionStringAsync());
        await cleanup.OpenAsync();
        await using var drop = new NpgsqlCommand("DROP TABLE schema_version", cleanup);
        await drop.ExecuteNonQueryAsync();
    }

    [Test]
    public async Task The_embedded_default_never_loads_the_postgresql_provider_and_postgresql_does()
    {
        await using (var embedded = await ServerProcess.StartAsync(_dir, _c2s, ["--log-level", "Warning", .. Args("embedded")]))
        {
            // The assemblies a .NET process has loaded are mapped files.
            Assert.That(File.ReadAllText($"/proc/{embedded.Pid}/maps"), Does.Contain("xmppd.dll").And.Not.Contain("Npgsql.dll"));
            await embedded.TerminateAsync();
        }
        await using var postgres = await ServerProcess.StartAsync(_dir, _c2s, await Environment(), Args("postgresql"));

        Assert.That(File.ReadAllText($"/proc/{postgres.Pid}/maps"), Does.Contain("Npgsql.dll"));
        Assert.That(postgres.Output, Does.Contain("Storage: PostgreSQL at 127.0.0.1:").And.Contain($"schema version {PostgresSchema.Version}"));
        Assert.That(postgres.Output, Does.Not.Contain(await PasswordAsync()));
        await postgres.TerminateAsync();
    }
}
