namespace Xmpp.Server.Metrics;

/// One more condition for GET /ready (a load balancer's health check): a problem in a few words, or null when fine.
public interface IReadinessCheck
{
    ValueTask<string?> ProblemAsync(CancellationToken cancellationToken);
}
