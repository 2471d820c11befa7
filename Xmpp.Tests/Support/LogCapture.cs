using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Xmpp.Tests.Support;

/// Keeps the formatted log lines of one in-process server, for tests of what a self-hoster reads in the log. Add it
/// with TestServer.StartAsync(services: capture.AddTo) and lower the category's level in the configuration
/// (Logging:LogLevel:CATEGORY = Information); the console logger keeps its own level.
public sealed class LogCapture : ILoggerProvider
{
    private readonly List<(string Category, LogLevel Level, string Text)> _lines = [];

    public void AddTo(IServiceCollection services) => services.AddSingleton<ILoggerProvider>(this);

    public IReadOnlyList<(string Category, LogLevel Level, string Text)> Lines
    {
        get { lock (_lines) return _lines.ToList(); }
    }

    /// The lines containing every one of the fragments.
    public IReadOnlyList<string> Matching(params string[] fragments) =>
        Lines.Select(l => l.Text).Where(t => fragments.All(f => t.Contains(f, StringComparison.Ordinal))).ToList();

    public string Dump() => string.Join(Environment.NewLine, Lines.Select(l => $"{l.Level} {l.Category}: {l.Text}"));

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose() { }

    private sealed class Logger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner._lines) owner._lines.Add((category, logLevel, formatter(state, exception)));
        }
    }
}
