using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;

namespace Xmpp.Server.Hosting;

/// The web host's server when no port is Kestrel's (no HTTPS, s2s, components or proxy65 listener): the client ports
/// have a listener of their own (Streams/C2sListener.cs), and Kestrel with no endpoint would open localhost:5000.
internal sealed class NoHttpServer : IServer
{
    public IFeatureCollection Features { get; } = new FeatureCollection();
    public Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken) where TContext : notnull => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public void Dispose() { }
}
