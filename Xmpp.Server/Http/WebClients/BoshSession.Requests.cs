using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Http.WebClients;

internal sealed partial class BoshSession
{
    /// The session creation request (XEP-0124 §7.1, XEP-0206 §5): answered with the session's parameters and the
    /// stream features once the stream has produced them.
    public async Task<byte[]> CreateAsync(long rid, Element body, string domain)
    {
        var authid = await StartAsync(body);
        var attributes = $" sid='{Id}' wait='{Wait}' inactivity='{Inactivity}' polling='1' requests='{Requests}' hold='{Hold}'"
            + $" ver='1.11' from='{domain}' authid='{authid}' xmpp:version='1.0' xmpp:restartlogic='true'";
        Waiter waiter;
        lock (_lock)
        {
            _nextRid = rid + 1;
            waiter = new Waiter(rid, attributes);
            if (_pending.Count > 0 || _ended) Complete(waiter, TakeBody(_ended, attributes));
            else _held.AddLast(waiter);
        }
        return await AwaitAnswerAsync(waiter);
    }

    /// Any later request: payload into the stream in rid order, then the answer (held until there is output).
    public async Task<byte[]> HandleAsync(long rid, Element body)
    {
        Waiter? inFlight = null;
        lock (_lock)
        {
            _lastActivityTicks = Environment.TickCount64;
            // §14.3: a request repeated after a broken connection gets the answer it had, or the one it is waiting for.
            if (_answered.TryGetValue(rid, out var replay)) return replay;
            foreach (var held in _held)
                if (held.Rid == rid) inFlight = held;
            if (inFlight is null && (rid < _nextRid || rid >= _nextRid + Requests)) return BoshBody.Terminate("item-not-found");
        }
        if (inFlight is not null) return await AwaitAnswerAsync(inFlight);

        // §14.2: requests are handled in rid order; a request that overtook an earlier one waits for it.
        while (true)
        {
            Task advanced;
            lock (_lock)
            {
                if (_ended) return BoshBody.Terminate("");
                if (rid == _nextRid) break;
                advanced = _ridAdvanced.Task;
            }
            if (await Task.WhenAny(advanced, Task.Delay(TimeSpan.FromSeconds(Wait))) != advanced)
            {
                End();
                return BoshBody.Terminate("item-not-found");
            }
        }

        var children = body.Elements().ToList();
        if (children.Count > 0) await Stream.SendAsync(children);
        bool terminate = body.Attr("type") == "terminate";
        if (AttrByLocalName(body, "restart", prefixed: true) == "true" && !terminate)
            await Stream.OpenAsync(name => HeaderAttribute(body, name));
        lock (_lock)
        {
            _nextRid = rid + 1;
            var signal = _ridAdvanced;
            _ridAdvanced = NewSignal();
            signal.TrySetResult();
        }
        if (terminate)
        {
            // §13: the client ends the session; its last stanzas went in above, then the stream closes.
            await Stream.CloseAsync();
            await Task.WhenAny(Stream.Completion, Task.Delay(TimeSpan.FromSeconds(2)));
            End();
            var answer = BoshBody.Terminate("");
            lock (_lock) _answered[rid] = answer;
            return answer;
        }

        var waiter = new Waiter(rid);
        lock (_lock)
        {
            if (_pending.Count > 0 || _ended) Complete(waiter, TakeBody(_ended));
            else
            {
                _held.AddLast(waiter);
                // §7.1 'hold': a new request releases the oldest held one, so the client can always send.
                while (_held.Count > Hold) AnswerOldestHeld();
            }
        }
        return await AwaitAnswerAsync(waiter);
    }

    /// Waits up to 'wait' seconds for output; then the request is answered with an empty body.
    private async Task<byte[]> AwaitAnswerAsync(Waiter waiter)
    {
        var answer = waiter.Answer.Task;
        if (await Task.WhenAny(answer, Task.Delay(TimeSpan.FromSeconds(Wait))) != answer)
        {
            lock (_lock)
                if (_held.Remove(waiter)) Complete(waiter, TakeBody(_ended, waiter.Attributes));
        }
        return await answer;
    }
}
