// XEP-0388 Extensible SASL Profile, with XEP-0386 Bind 2 and XEP-0484 FAST carried inside it.
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Streams;

public sealed partial class XmppStream
{
    /// The FAST mechanisms offered: ENDP needs tls-server-end-point data; UNIQ is never offered (see AdvertisedChannelBindingTypes).
    private IEnumerable<string> FastMechanisms()
    {
        if (ChannelBindingData() is not null) yield return HashedToken.Sha256EndPoint;
        yield return HashedToken.Sha256None;
    }

    /// The client's SASL2 request, kept until the exchange ends because its extensions apply only on success.
    private sealed record Sasl2Pending(Element Authenticate, string? UserAgentId, string? RequestedTokenMechanism, bool Invalidate);

    private Sasl2Pending? _sasl2;

    /// XEP-0388 §2.1: offered only over TLS, with the same mechanisms as RFC 6120 SASL on this stream.
    private Element Sasl2Feature()
    {
        var authentication = new Element("authentication", Ns.Sasl2);
        foreach (var m in OfferedMechanisms(sasl2: true)) authentication.Add(new Element("mechanism", Ns.Sasl2).SetText(m));
        var bindInline = new Element("inline", Ns.Bind2);
        foreach (var ns in _s.Modules.Bind2InlineFeatures) bindInline.Add(new Element("feature", Ns.Bind2).SetAttr("var", ns));
        var fast = new Element("fast", Ns.Fast);
        foreach (var m in FastMechanisms()) fast.Add(new Element("mechanism", Ns.Fast).SetText(m));
        authentication.Add(new Element("inline", Ns.Sasl2)
            .Add(new Element("bind", Ns.Bind2).Add(bindInline))
            .Add(fast)
            // XEP-0198 §5 with XEP-0388: <resume/> may come inside <authenticate/>.
            .Add(new Element("sm", Ns.StreamManagement)));
        return authentication;
    }

    /// XEP-0388 §2.3–2.6: authenticate, response and abort.
    private async ValueTask<StreamAction> HandleSasl2Async(Element e)
    {
        var auth = Auth;
        auth.Domain = _domain;
        auth.ChannelBinding = ChannelBindingData();
        SaslAuthenticator.Step step;
        switch (e.Name)
        {
            case "authenticate":
                step = await StartSasl2Async(e, auth);
                break;
            case "response":
                step = await auth.RespondAsync(TryDecodeSasl2(e.Text, out var data) ? data : null);
                break;
            case "abort":
                step = auth.Abort();
                break;
            default:
                throw new XmppStreamException(StreamErrors.UnsupportedStanzaType, $"Unexpected SASL2 element {e.Name}");
        }
        switch (step.Kind)
        {
            case SaslAuthenticator.Kind.Challenge:
                await WriteDirectAsync(new Element("challenge", Ns.Sasl2).SetText(Convert.ToBase64String(step.Data ?? [])));
                return StreamAction.Continue;
            case SaslAuthenticator.Kind.Success:
                return await Sasl2SucceedAsync(auth, step.Data);
            default:
                _sasl2 = null;
                await WriteDirectAsync(SaslFailure(Ns.Sasl2, step.Condition!, step.Text));
                if (auth.AttemptsExhausted)
                    throw new XmppStreamException(StreamErrors.PolicyViolation, "Too many failed authentication attempts");
                return StreamAction.Continue;
        }
    }

    private async ValueTask<SaslAuthenticator.Step> StartSasl2Async(Element authenticate, SaslAuthenticator auth)
    {
        _sasl2 = null;
        var mechanisms = OfferedMechanisms(sasl2: true).ToList();
        var fastMechanisms = FastMechanisms().ToList();
        byte[]? initial = null;
        if (authenticate.Child("initial-response", Ns.Sasl2) is { } ir && !TryDecodeSasl2(ir.Text, out initial))
            return auth.Reject(SaslFailures.IncorrectEncoding, null);
        var userAgentId = authenticate.Child("user-agent", Ns.Sasl2)?.Attr("id");
        var request = authenticate.Child("request-token", Ns.Fast);
        if (request is not null && !fastMechanisms.Contains(request.Attr("mechanism") ?? ""))
            return auth.Reject(SaslFailures.InvalidMechanism, "The token mechanism is not offered");
        // XEP-0484 §4.1: tokens are issued per client, which names itself with the user-agent id.
        if (request is not null && string.IsNullOrEmpty(userAgentId))
            return auth.Reject(SaslFailures.MalformedRequest, "A token request needs <user-agent id='...'/>");
        var fast = authenticate.Child("fast", Ns.Fast);
        long? count = null;
        if (fast?.Attr("count") is { } countText)
        {
            if (!long.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out var c))
                return auth.Reject(SaslFailures.MalformedRequest, "The count must be a non-negative integer");
            count = c;
        }
        _sasl2 = new Sasl2Pending(authenticate, userAgentId, request?.Attr("mechanism"), fast?.Attr("invalidate") is "1" or "true");
        // Token mechanisms are listed in <fast/>, not among the mechanisms, and are accepted only here.
        return await auth.StartAsync(new SaslRequest(authenticate.Attr("mechanism") ?? "", initial, [.. mechanisms, .. fastMechanisms])
        {
            Advertised = mechanisms,
            ChannelBindingTypes = AdvertisedChannelBindingTypes(),
            UserAgentId = userAgentId,
            FastCount = count,
        });
    }

    private async ValueTask<StreamAction> Sasl2SucceedAsync(SaslAuthenticator auth, byte[]? additionalData)
    {
        var pending = _sasl2!;
        _sasl2 = null;
        var username = auth.Username!;
        var success = new Element("success", Ns.Sasl2);
        if (additionalData is not null)
            success.Add(new Element("additional-data", Ns.Sasl2).SetText(Convert.ToBase64String(additionalData)));
        var identifier = new Element("authorization-identifier", Ns.Sasl2).SetText(Jid.Create(username, _domain).ToString());
        success.Add(identifier);

        // XEP-0484 §3.5–3.6: invalidate on request, then hand out a token when asked for one or when the used one is due.
        if (pending.UserAgentId is { Length: > 0 } agent)
        {
            var used = auth.UsedToken;
            if (used is not null && pending.Invalidate) await _s.FastTokens.InvalidateAsync(username, agent);
            var mechanism = pending.RequestedTokenMechanism
                ?? (used is { RotationDue: true } && !pending.Invalidate ? auth.SucceededMechanism : null);
            if (mechanism is not null)
            {
                var issued = await _s.FastTokens.IssueAsync(username, agent, mechanism);
                success.Add(new Element("token", Ns.Fast)
                    .SetAttr("expiry", issued.Expiry.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))
                    .SetAttr("token", issued.Token));
            }
        }

        _username = username;
        if (pending.Authenticate.Child("resume", Ns.StreamManagement) is { } resume)
        {
            // XEP-0198 with SASL2: the outcome of the resumption goes into <success/>; a resumed session skips
            // Bind 2 (XEP-0386 §3.2), a failed one goes on to bind.
            if (_s.StreamManagement.RemoteNodeOf(resume.Attr("previd")) is { } node)
            {
                // Issue 17: a session another cluster node issued is handed over from it.
                var handOver = await _s.StreamManagement.ResumeFromNodeAsync(this, Jid.Create(username, _domain), resume, node);
                if (handOver.StreamError)
                {
                    _endsSession = true;
                    await WriteDirectAsync(handOver.Reply);
                    await CloseGracefullyAsync();
                    return StreamAction.Stop;
                }
                success.Add(handOver.Reply);
                if (handOver.Session is { } handed)
                {
                    identifier.SetText(handed.Session.Jid.ToString());
                    _state = StreamState.Bound;
                    await WriteDirectAsync(success, BuildFeatures(resumed: true));
                    await GoLiveHandedOverAsync(handed);
                    return StreamAction.Continue;
                }
            }
            else
            {
                var result = _s.StreamManagement.TryResume(this, Jid.Create(username, _domain), resume);
                if (result.StreamError)
                {
                    _endsSession = true;
                    await WriteDirectAsync(result.Reply);
                    await CloseGracefullyAsync();
                    return StreamAction.Stop;
                }
                success.Add(result.Reply);
                if (result.Session is { } sm)
                {
                    identifier.SetText(sm.Session.Jid.ToString());
                    _state = StreamState.Bound;
                    await WriteDirectAsync(success, BuildFeatures(resumed: true));
                    GoLiveResumed(result, sm);
                    return StreamAction.Continue;
                }
            }
        }
        if (pending.Authenticate.Child("bind", Ns.Bind2) is { } bind)
        {
            var bound = await Bind2Async(bind, pending.UserAgentId);
            if (bound is null)
            {
                // The account is full: authentication stands undone, as if it had failed (XEP-0388 §2.6.2).
                _username = null;
                await WriteDirectAsync(SaslFailure(Ns.Sasl2, SaslFailures.TemporaryAuthFailure, "Too many sessions for this account"));
                return StreamAction.Continue;
            }
            identifier.SetText(_session!.Jid.ToString());
            success.Add(bound);
            // XEP-0388 §2.6.1: no stream restart; the features of the now established stream follow at once.
            Enqueue(success);
            Enqueue(BuildFeatures());
            await PublishSessionAsync(_session);
            return StreamAction.Continue;
        }
        _state = StreamState.Authenticated;
        await WriteDirectAsync(success, BuildFeatures());
        return StreamAction.Continue;
    }

    /// XEP-0386 §3.2: choose the resource "[tag]/[random]", enable the inline features, and return &lt;bound/&gt;.
    /// The session is not yet in the directory, so nothing reaches it before &lt;success/&gt;.
    private async ValueTask<Element?> Bind2Async(Element bind, string? userAgentId)
    {
        var bare = Jid.Create(_username, _domain);
        var random = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var tag = bind.ChildText("tag", Ns.Bind2)?.Trim();
        Jid full;
        try { full = bare.WithResource(string.IsNullOrEmpty(tag) || tag.Length > 64 ? random : $"{tag}/{random}"); }
        catch (FormatException) { full = bare.WithResource(random); }

        var existing = _s.Directory.Get(bare);
        var replaced = userAgentId is null ? null
            : existing.Entries.Where(e => e.UserAgentId == userAgentId).ToList();
        if (existing.Count - (replaced?.Count ?? 0) >= _s.Options.Limits.MaxResourcesPerAccount) return null;

        var session = new ClientSession(full, this);
        session.AtBind(e => e with { UserAgentId = userAgentId });
        EnterBound(session);
        var bound = new Element("bound", Ns.Bind2);
        foreach (var child in bind.Elements())
        {
            if (child.Namespace == Ns.Bind2) continue;
            if (_s.Modules.FindBind2Inline(child.Namespace) is not { } handler) continue;
            if (await handler(session, child) is { } answer) bound.Add(answer);
        }
        // §3.2: a client's earlier sessions (same user-agent id) end when it binds anew.
        foreach (var old in replaced ?? []) old.Sink.Close(StreamErrors.Conflict, "Replaced by a new session of the same client");
        return bound;
    }

    /// XEP-0388 §2.2: base64 without the RFC 6120 "=" convention; an empty element is an empty response.
    internal static bool TryDecodeSasl2(string text, out byte[]? data)
    {
        text = text.Trim();
        data = null;
        if (text.Length > 8192) return false;
        try { data = Convert.FromBase64String(text); return true; }
        catch (FormatException) { return false; }
    }
}
