namespace Xmpp.Tests;

/// Stops the shared PostgreSQL instance (Support/PostgresInstance) once every test of the assembly has run; a
/// namespace-level setup fixture, so it wraps the whole run and costs nothing when no test started the instance.
[SetUpFixture]
public sealed class PostgresTeardown
{
    [OneTimeTearDown]
    public void StopPostgres() => Support.PostgresInstance.StopShared();
}
