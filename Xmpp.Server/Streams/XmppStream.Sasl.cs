using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Precis;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Storage;

namespace Xmpp.Server.Streams;

public sealed partial class XmppStream
{
    private enum SaslStep { None, AwaitPlain, AwaitScramFirst, AwaitScramFinal }

    private SaslStep _saslStep;
    private ScramServer? _scram;
    private ScramHash _scramHash;
    private string? _saslUser;
    private Account? _saslAccount;
    private int _saslFailures;
    private int _saslGuesses;
    private bool _clientBindsOtherType;
    private HashSet<string>? _offered;

    /// RFC 6120 §6.4: auth, response and abort.
    private async ValueTask<StreamAction> HandleSaslAsync(Element e)
    {
        switch (e.Name)
        {
            case "auth":
                return await HandleAuthAsync(e);
            case "response":
                if (!TryDecode(e, out var data)) return await SaslFailAsync("incorrect-encoding", null, countsAsGuess: false);
                return _saslStep switch
                {
                    SaslStep.AwaitPlain => await PlainAsync(data ?? []),
                    SaslStep.AwaitScramFirst => await ScramFirstAsync(data ?? []),
                    SaslStep.AwaitScramFinal => await ScramFinalAsync(data ?? []),
                    _ => await SaslFailAsync("malformed-request", "No authentication is in progress", countsAsGuess: false),
                };
            case "abort":
                ResetSasl();
                await WriteDirectAsync(SaslFailure("aborted", null));
                return StreamAction.Continue;
            default:
                throw new XmppStreamException(StreamErrors.UnsupportedStanzaType, $"Unexpected SASL element {e.Name}");
        }
    }

    private async ValueTask<StreamAction> HandleAuthAsync(Element auth)
    {
        ResetSasl();
        var mechanism = auth.Attr("mechanism") ?? "";
        _offered ??= [.. OfferedMechanisms()];
        if (!_offered.Contains(mechanism))
            return await SaslFailAsync("invalid-mechanism", $"{mechanism} is not offered", countsAsGuess: false);
        if (_s.Throttle.RetryAfter(AuthThrottle.IpKey(RemoteAddress)) is { } wait)
            return await SaslFailAsync("temporary-auth-failure", RetryText(wait), countsAsGuess: false);
        if (!TryDecode(auth, out var data))
            return await SaslFailAsync("incorrect-encoding", null, countsAsGuess: false);

        if (mechanism == "PLAIN")
        {
            if (data is null)
            {
                _saslStep = SaslStep.AwaitPlain;
                await WriteDirectAsync(new Element("challenge", Ns.Sasl));
                return StreamAction.Continue;
            }
            return await PlainAsync(data);
        }
        ScramHashes.TryParseMechanism(mechanism, out var hash, out var plus);
        var cb = ChannelBindingData();
        if (plus && data is { Length: > 2 } && data[0] == (byte)'p' && data[1] == (byte)'='
            && !data.AsSpan(2).StartsWith("tls-server-end-point,"u8))
            _clientBindsOtherType = true;
        // RFC 5802 §6: 'y' while we offer -PLUS means someone stripped the -PLUS mechanisms, so it fails.
        // COMPAT(slixmpp): a client that already asked for a channel-binding type we do not have (tls-unique)
        // on this stream knows we offer -PLUS; its fallback to 'y' is honest, not a downgrade.
        _scram = new ScramServer(hash, plus, cb, serverOffersPlus: cb is not null && !_clientBindsOtherType);
        _scramHash = hash;
        if (data is null || data.Length == 0)
        {
            // RFC 6120 §6.4.2: no initial response; ask for it with an empty challenge.
            _saslStep = SaslStep.AwaitScramFirst;
            await WriteDirectAsync(new Element("challenge", Ns.Sasl));
            return StreamAction.Continue;
        }
        return await ScramFirstAsync(data);
    }

    private async ValueTask<StreamAction> ScramFirstAsync(byte[] data)
    {
        var outcome = _scram!.ClientFirst(data, out var user, out var authzid, out var failure);
        if (outcome == SaslOutcome.Failure)
            return await SaslFailAsync(failure ?? "malformed-request", null, countsAsGuess: false);
        _saslUser = NormalizeUser(user);
        if (authzid is not null && !AuthzidMatches(authzid, _saslUser))
            return await SaslFailAsync("invalid-authzid", null, countsAsGuess: false);
        if (_saslUser is not null && _s.Throttle.RetryAfter(AuthThrottle.UserKey(_saslUser)) is { } wait)
            return await SaslFailAsync("temporary-auth-failure", RetryText(wait), countsAsGuess: false);
        _saslAccount = _saslUser is null ? null : await _s.Accounts.FindAsync(_saslUser);
        var credential = _saslAccount is null ? null : AccountService.Credential(_saslAccount, _scramHash);
        var serverFirst = _scram.ServerFirst(credential);
        if (credential is null) _saslAccount = null;
        _saslStep = SaslStep.AwaitScramFinal;
        await WriteDirectAsync(new Element("challenge", Ns.Sasl).SetText(Convert.ToBase64String(serverFirst)));
        return StreamAction.Continue;
    }

    private async ValueTask<StreamAction> ScramFinalAsync(byte[] data)
    {
        var outcome = _scram!.ClientFinal(data, out var serverFinal, out var failure);
        if (outcome != SaslOutcome.Success || _saslAccount is null)
            return await SaslFailAsync(_saslAccount is null ? "not-authorized" : failure ?? "not-authorized", null, countsAsGuess: true);
        return await SaslSucceedAsync(_saslAccount.Username, serverFinal);
    }

    private async ValueTask<StreamAction> PlainAsync(byte[] data)
    {
        if (!PlainMechanism.TryParse(data, out var authzid, out var user, out var password))
            return await SaslFailAsync("malformed-request", null, countsAsGuess: false);
        _saslUser = NormalizeUser(user);
        if (authzid is { Length: > 0 } && !AuthzidMatches(authzid, _saslUser))
            return await SaslFailAsync("invalid-authzid", null, countsAsGuess: false);
        if (_saslUser is not null && _s.Throttle.RetryAfter(AuthThrottle.UserKey(_saslUser)) is { } wait)
            return await SaslFailAsync("temporary-auth-failure", RetryText(wait), countsAsGuess: false);
        var account = _saslUser is null ? null : await _s.Accounts.FindAsync(_saslUser);
        var credential = account is null ? null
            : AccountService.Credential(account, ScramHash.Sha256) ?? AccountService.Credential(account, ScramHash.Sha1);
        bool ok;
        try { ok = credential is not null && credential.VerifyPassword(password); }
        catch (FormatException) { ok = false; }
        if (!ok) return await SaslFailAsync("not-authorized", null, countsAsGuess: true);
        return await SaslSucceedAsync(account!.Username, null);
    }

    private async ValueTask<StreamAction> SaslSucceedAsync(string username, byte[]? additionalData)
    {
        _s.Throttle.RecordSuccess(AuthThrottle.UserKey(username));
        ResetSasl();
        _username = username;
        var success = new Element("success", Ns.Sasl);
        if (additionalData is not null) success.SetText(Convert.ToBase64String(additionalData));
        await WriteDirectAsync(success);
        _s.Logger.LogInformation("{User}@{Domain} authenticated from {Ip}", username, _domain, RemoteAddress);
        // RFC 6120 §6.4.6: the client restarts the stream; features then offer binding.
        _parser.Reset();
        _state = StreamState.Authenticated;
        _headerSent = false;
        return StreamAction.Continue;
    }

    private async ValueTask<StreamAction> SaslFailAsync(string condition, string? text, bool countsAsGuess)
    {
        if (countsAsGuess)
        {
            _s.Throttle.RecordFailure(AuthThrottle.IpKey(RemoteAddress));
            if (_saslUser is not null) _s.Throttle.RecordFailure(AuthThrottle.UserKey(_saslUser));
            _s.Logger.LogInformation("Failed login for {User} from {Ip}", _saslUser ?? "(unknown)", RemoteAddress);
        }
        ResetSasl();
        await WriteDirectAsync(SaslFailure(condition, text));
        // RFC 6120 §6.4.5: a configurable number of retries, then the stream ends. Wrong passwords count against
        // that number; protocol mistakes (a client probing mechanisms) get a looser bound of their own.
        int maxGuesses = _s.Options.Auth.MaxAttemptsPerStream;
        if ((countsAsGuess && ++_saslGuesses >= maxGuesses) || ++_saslFailures >= maxGuesses * 4)
            throw new XmppStreamException(StreamErrors.PolicyViolation, "Too many failed authentication attempts");
        return StreamAction.Continue;
    }

    private void ResetSasl()
    {
        _saslStep = SaslStep.None;
        _scram = null;
        _saslUser = null;
        _saslAccount = null;
    }

    private static string RetryText(TimeSpan wait) =>
        $"Too many failed logins; try again in {Math.Ceiling(wait.TotalSeconds)} s";

    private string? NormalizeUser(string? user)
    {
        if (string.IsNullOrEmpty(user)) return null;
        try { return Precis.EnforceUsernameCaseMapped(user); }
        catch (FormatException) { return null; }
    }

    private bool AuthzidMatches(string authzid, string? user) =>
        user is not null && Jid.TryParse(authzid, out var j) && j.IsBare && j.Local == user && j.Domain == _domain;

    private static Element SaslFailure(string condition, string? text)
    {
        var failure = new Element("failure", Ns.Sasl).Add(new Element(condition, Ns.Sasl));
        if (text is not null) failure.Add(new Element("text", Ns.Sasl).SetAttr("xml:lang", "en").SetText(text));
        return failure;
    }

    /// RFC 6120 §6.4.2: no text is "no initial response", "=" is an empty one; anything else is base64.
    private static bool TryDecode(Element e, out byte[]? data)
    {
        var text = e.Text.Trim();
        data = null;
        if (text.Length == 0) return true;
        if (text == "=") { data = []; return true; }
        if (text.Length > 8192) return false;
        try { data = Convert.FromBase64String(text); return true; }
        catch (FormatException) { return false; }
    }
}
