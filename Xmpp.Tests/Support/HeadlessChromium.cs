using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Xmpp.Tests.Support;

/// Debian's Chromium, headless, driven over the Chrome DevTools Protocol on a WebSocket: enough to load a page, run a
/// line of script in it (fill a form, click), wait for the next page and take a screenshot. Each instance has its own
/// temporary profile folder, listens for DevTools on a port Chromium picks (written to DevToolsActivePort in that
/// folder), and is killed by its process id when disposed.
public sealed class HeadlessChromium : IAsyncDisposable
{
    public const string Program = "/usr/bin/chromium";
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _socket = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonNode>> _calls = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource<JsonNode>> _nextEvent = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly StringBuilder _stderr = new();
    private Task _reader = Task.CompletedTask;
    private int _nextId;

    private HeadlessChromium(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    public static async Task<HeadlessChromium> StartAsync()
    {
        ClientProcess.RequireProgram(Program, "chromium");
        var profile = Path.Combine(Path.GetTempPath(), "xmpp-test-chromium-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(profile);
        var start = new ProcessStartInfo(Program)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                     "--disable-extensions", "--disable-background-networking", "--disable-sync", "--disable-dev-shm-usage",
                     // The test server's certificate is self-signed.
                     "--ignore-certificate-errors",
                     "--window-size=900,1500", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                     "--user-data-dir=" + profile, "about:blank",
                 })
            start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        var browser = new HeadlessChromium(process, profile);
        process.ErrorDataReceived += (_, e) => { lock (browser._stderr) browser._stderr.AppendLine(e.Data); };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            await browser.ConnectAsync();
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
        return browser;
    }

    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    private async Task ConnectAsync()
    {
        var portFile = Path.Combine(_profile, "DevToolsActivePort");
        var deadline = DateTime.UtcNow + StepTimeout;
        while (!File.Exists(portFile) || File.ReadAllLines(portFile).Length < 2)
        {
            if (_process.HasExited) throw new InvalidOperationException("chromium exited at start: " + Stderr);
            if (DateTime.UtcNow > deadline) throw new TimeoutException("chromium wrote no DevToolsActivePort: " + Stderr);
            await Task.Delay(100);
        }
        var port = int.Parse(File.ReadAllLines(portFile)[0]);
        // The page target of the about:blank tab.
        using var http = new HttpClient { Timeout = StepTimeout };
        var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))!.AsArray();
        var page = targets.First(t => (string?)t!["type"] == "page")!;
        using var cts = new CancellationTokenSource(StepTimeout);
        await _socket.ConnectAsync(new Uri((string)page["webSocketDebuggerUrl"]!), cts.Token);
        _reader = Task.Run(ReadLoopAsync);
        await CallAsync("Page.enable");
        await CallAsync("Runtime.enable");
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[1 << 16];
        var message = new MemoryStream();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var r = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (r.MessageType == WebSocketMessageType.Close) break;
                message.Write(buffer, 0, r.Count);
                if (!r.EndOfMessage) continue;
                var json = JsonNode.Parse(message.ToArray())!;
                message.SetLength(0);
                if (json["id"] is { } id && _calls.TryRemove((int)id, out var call))
                {
                    if (json["error"] is { } error) call.TrySetException(new InvalidOperationException("CDP error: " + error.ToJsonString()));
                    else call.TrySetResult(json["result"] ?? new JsonObject());
                }
                else if (json["method"] is { } method && _nextEvent.TryRemove((string)method!, out var waiter))
                {
                    waiter.TrySetResult(json["params"] ?? new JsonObject());
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
        {
        }
        foreach (var c in _calls.Values) c.TrySetException(new InvalidOperationException("the DevTools connection closed"));
    }

    public async Task<JsonNode> CallAsync(string method, JsonObject? parameters = null)
    {
        var id = Interlocked.Increment(ref _nextId);
        var done = new TaskCompletionSource<JsonNode>(TaskCreationOptions.RunContinuationsAsynchronously);
        _calls[id] = done;
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() });
        await _socket.SendAsync(bytes, WebSocketMessageType.Text, true, _stop.Token);
        return await done.Task.WaitAsync(StepTimeout);
    }

    /// A task for the next event of that name; ask before doing what causes it.
    public Task<JsonNode> NextEvent(string method) =>
        _nextEvent.GetOrAdd(method, _ => new TaskCompletionSource<JsonNode>(TaskCreationOptions.RunContinuationsAsynchronously)).Task.WaitAsync(StepTimeout);

    public async Task NavigateAsync(string url)
    {
        var loaded = NextEvent("Page.loadEventFired");
        var result = await CallAsync("Page.navigate", new JsonObject { ["url"] = url });
        if (result["errorText"] is { } error) throw new InvalidOperationException($"navigating to {url}: {error}");
        await loaded;
    }

    /// Runs an expression in the page and returns its value (strings, numbers, booleans).
    public async Task<JsonNode?> EvaluateAsync(string expression)
    {
        var result = await CallAsync("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true });
        if (result["exceptionDetails"] is { } ex) throw new InvalidOperationException("script failed: " + ex.ToJsonString());
        return result["result"]?["value"];
    }

    /// Runs a script that leads to another page (a form's submit button) and waits until that page has loaded.
    public async Task EvaluateAndWaitForLoadAsync(string expression)
    {
        var loaded = NextEvent("Page.loadEventFired");
        await EvaluateAsync(expression);
        await loaded;
    }

    public async Task ScreenshotAsync(string path)
    {
        var result = await CallAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png", ["captureBeyondViewport"] = true });
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllBytesAsync(path, Convert.FromBase64String((string)result["data"]!));
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _socket.Abort();
        _socket.Dispose();
        try { await _reader.WaitAsync(TimeSpan.FromSeconds(2)); } catch (TimeoutException) { }
        try
        {
            // This process and the helpers it started (renderer, GPU, zygote), found by parent process id.
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
        {
        }
        _process.Dispose();
        try { Directory.Delete(_profile, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
