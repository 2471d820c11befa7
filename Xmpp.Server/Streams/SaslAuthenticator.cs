using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Precis;
using Xmpp.Protocol.Sasl;
using Xmpp.Server.Auth;
using Xmpp.Storage;

namespace Xmpp.Server.Streams;

/// What a client asked for when it started an exchange, whichever SASL profile carried it.
internal sealed record SaslRequest(string Mechanism, byte[]? InitialResponse, IReadOnlyCollection<string> Offered)
{
    /// The mechanism list the client saw (XEP-0474 hashes it); defaults to the accepted ones.
    public IReadOnlyCollection<string>? Advertised { get; init; }

    /// The XEP-0440 channel-binding types advertised next to the mechanisms, or null when none were (XEP-0474 §5.1).
    public IReadOnlyList<string>? ChannelBindingTypes { get; init; }

    /// XEP-0388 user-agent id, needed by the XEP-0484 token mechanisms.
    public string? UserAgentId { get; init; }

    /// XEP-0484 §3.4 replay counter.
    public long? FastCount { get; init; }
}

/// The mechanism side of SASL for one stream, shared by the RFC 6120 profile (XmppStream.Sasl.cs) and XEP-0388
/// (XmppStream.Sasl2.cs): SCRAM with and without channel binding, PLAIN, and the XEP-0484 HT tokens; login throttling
/// per IP and per account, and the per-stream limit on failed attempts. The profiles only translate elements.
internal sealed class SaslAuthenticator(StreamServices s, FastTokenService fast, string remoteAddress)
{
    public enum Kind { Challenge, Success, Failure }

    /// One answer to send: a challenge, success (with optional additional data) or failure with its RFC 6120 §6.5 condition.
    public readonly record struct Step(Kind Kind, byte[]? Data = null, string? Condition = null, string? Text = null);

    private enum Expect { Nothing, Plain, ScramFirst, ScramFinal }

    private Expect _expect;
    private ScramServer? _scram;
    private ScramHash _scramHash;
    private SaslRequest? _request;
    private string? _user;
    private Account? _account;
    private int _failures;
    private int _guesses;

    public string Domain { get; set; } = "";
    public byte[]? ChannelBinding { get; set; }

    /// After success: the account's username, and the token when a FAST token was used.
    public string? Username { get; private set; }
    public FastTokenService.Verified? UsedToken { get; private set; }
    public string? SucceededMechanism { get; private set; }

    /// True after a failure that used up the stream's attempts: the profile sends the failure, then ends the stream.
    public bool AttemptsExhausted { get; private set; }

    public bool InProgress => _expect != Expect.Nothing;

    public async ValueTask<Step> StartAsync(SaslRequest request) => await UnlessDisabledAsync(await StartMechanismAsync(request));

    /// A response; null data means it was not valid base64.
    public async ValueTask<Step> RespondAsync(byte[]? data) => await UnlessDisabledAsync(await RespondToChallengeAsync(data));

    /// RFC 6120 §6.5.1 account-disabled: the credentials were right, but an admin disabled the account (XEP-0133
    /// §4.3). Checked only after they were proven, so it tells nothing to someone guessing; not counted as a guess.
    private async ValueTask<Step> UnlessDisabledAsync(Step step)
    {
        if (step.Kind != Kind.Success || Username is not { } user || !await s.Accounts.IsDisabledAsync(user)) return step;
        s.Logger.LogInformation("{User}@{Domain} is disabled; login from {Ip} refused", user, Domain, remoteAddress);
        Username = null;
        UsedToken = null;
        SucceededMechanism = null;
        return Fail(SaslFailures.AccountDisabled, "This account has been disabled", countsAsGuess: false);
    }

    private async ValueTask<Step> StartMechanismAsync(SaslRequest request)
    {
        Reset();
        UsedToken = null;
        Username = null;
        _request = request;
        var mechanism = request.Mechanism;
        if (!request.Offered.Contains(mechanism))
            return Fail(SaslFailures.InvalidMechanism, $"{mechanism} is not offered", countsAsGuess: false);
        if (s.Throttle.RetryAfter(AuthThrottle.IpKey(remoteAddress)) is { } wait)
            return Fail(SaslFailures.TemporaryAuthFailure, RetryText(wait), countsAsGuess: false);
        var data = request.InitialResponse;

        if (mechanism == PlainMechanism.Name)
        {
            if (data is null) { _expect = Expect.Plain; return new Step(Kind.Challenge, []); }
            return await PlainAsync(data);
        }
        if (HashedToken.TryParseMechanism(mechanism, out var binding))
            return await HashedTokenAsync(binding, data ?? []);

        ScramHashes.TryParseMechanism(mechanism, out var hash, out var plus);
        // RFC 5802 §6: 'y' fails only where this profile's list showed -PLUS (someone stripped it); RFC 6120 SASL
        // shows none (XmppStream.OfferedMechanisms), so there 'y' is the honest answer of a client that can bind. No exception for a client that first tried a type we lack: an active attacker could send
        // that attempt itself to make the stripped list look honest.
        bool listedPlus = (request.Advertised ?? request.Offered).Any(m => ScramHashes.TryParseMechanism(m, out _, out var p) && p);
        _scram = new ScramServer(hash, plus, ChannelBinding, serverOffersPlus: ChannelBinding is not null && listedPlus)
        {
            DowngradeProtection = ScramDowngradeProtection.Compute(hash, request.Advertised ?? request.Offered, request.ChannelBindingTypes),
        };
        _scramHash = hash;
        if (data is null || data.Length == 0)
        {
            // RFC 6120 §6.4.2: no initial response; ask for it with an empty challenge.
            _expect = Expect.ScramFirst;
            return new Step(Kind.Challenge, []);
        }
        return await ScramFirstAsync(data);
    }

    private async ValueTask<Step> RespondToChallengeAsync(byte[]? data)
    {
        if (data is null) return Fail(SaslFailures.IncorrectEncoding, null, countsAsGuess: false);
        return _expect switch
        {
            Expect.Plain => await PlainAsync(data),
            Expect.ScramFirst => await ScramFirstAsync(data),
            Expect.ScramFinal => await ScramFinalAsync(data),
            _ => Fail(SaslFailures.MalformedRequest, "No authentication is in progress", countsAsGuess: false),
        };
    }

    public Step Abort()
    {
        Reset();
        return new Step(Kind.Failure, Condition: SaslFailures.Aborted);
    }

    /// A failure the profile itself detected (a malformed request); counted like the mechanism's own.
    public Step Reject(string condition, string? text) => Fail(condition, text, countsAsGuess: false);

    private async ValueTask<Step> ScramFirstAsync(byte[] data)
    {
        var outcome = _scram!.ClientFirst(data, out var user, out var authzid, out var failure);
        // Nothing about the password is known yet: a protocol failure, with the RFC 5802 §7 value as its text
        // (for example unsupported-channel-binding-type), never counted as a guess.
        if (outcome == SaslOutcome.Failure)
            return Fail(failure ?? SaslFailures.MalformedRequest, _scram.FailureDetail, countsAsGuess: false);
        _user = NormalizeUser(user);
        if (authzid is not null && !AuthzidMatches(authzid, _user))
            return Fail(SaslFailures.InvalidAuthzid, null, countsAsGuess: false);
        if (_user is not null && s.Throttle.RetryAfter(AuthThrottle.UserKey(_user)) is { } wait)
            return Fail(SaslFailures.TemporaryAuthFailure, RetryText(wait), countsAsGuess: false);
        _account = _user is null ? null : await s.Accounts.FindForLoginAsync(_user);
        var credential = _account is null ? null : AccountService.Credential(_account, _scramHash);
        var serverFirst = _scram.ServerFirst(credential);
        if (credential is null) _account = null;
        _expect = Expect.ScramFinal;
        return new Step(Kind.Challenge, serverFirst);
    }

    private ValueTask<Step> ScramFinalAsync(byte[] data)
    {
        var scram = _scram!;
        var outcome = scram.ClientFinal(data, out var serverFinal, out var failure);
        if (outcome == SaslOutcome.Success && _account is not null)
            return ValueTask.FromResult(Succeed(_account.Username, serverFinal));
        // Only a failed proof check is a password guess. Malformed messages, a wrong nonce and mismatched channel
        // binding are decided before the proof is looked at, tell a guesser nothing, and must not slow down the
        // account's real owner. The text of a wrong proof stays empty: "unknown-user" would enumerate accounts.
        bool guess = scram.CredentialsRejected || outcome == SaslOutcome.Success;
        return ValueTask.FromResult(Fail(failure ?? SaslFailures.NotAuthorized, guess ? null : scram.FailureDetail, countsAsGuess: guess));
    }

    private async ValueTask<Step> PlainAsync(byte[] data)
    {
        if (!PlainMechanism.TryParse(data, out var authzid, out var user, out var password))
            return Fail(SaslFailures.MalformedRequest, null, countsAsGuess: false);
        _user = NormalizeUser(user);
        if (authzid is { Length: > 0 } && !AuthzidMatches(authzid, _user))
            return Fail(SaslFailures.InvalidAuthzid, null, countsAsGuess: false);
        if (_user is not null && s.Throttle.RetryAfter(AuthThrottle.UserKey(_user)) is { } wait)
            return Fail(SaslFailures.TemporaryAuthFailure, RetryText(wait), countsAsGuess: false);
        var account = _user is null ? null : await s.Accounts.FindForLoginAsync(_user);
        var credential = account is null ? null
            : AccountService.Credential(account, ScramHash.Sha256) ?? AccountService.Credential(account, ScramHash.Sha1);
        bool ok;
        await BlockingWork.ToPool(); // PBKDF2 (Auth:ScramIterations rounds) must not hold a socket engine's thread
        try { ok = credential is not null && credential.VerifyPassword(password); }
        catch (FormatException) { ok = false; }
        if (!ok) return Fail(SaslFailures.NotAuthorized, null, countsAsGuess: true);
        return Succeed(account!.Username, null);
    }

    /// XEP-0484 with draft-schmaus-kitten-sasl-ht-08: one message, answered by success or failure.
    private async ValueTask<Step> HashedTokenAsync(HashedTokenBinding binding, byte[] data)
    {
        if (!HashedToken.TryParseInitial(data, out var user, out var initiator))
            return Fail(SaslFailures.MalformedRequest, null, countsAsGuess: false);
        _user = NormalizeUser(user);
        if (_request!.UserAgentId is not { Length: > 0 } agent)
            return Fail(SaslFailures.MalformedRequest, "A token login needs the user-agent id it was issued to", countsAsGuess: false);
        if (_user is not null && s.Throttle.RetryAfter(AuthThrottle.UserKey(_user)) is { } wait)
            return Fail(SaslFailures.TemporaryAuthFailure, RetryText(wait), countsAsGuess: false);
        byte[] cb = binding == HashedTokenBinding.EndPoint ? ChannelBinding ?? [] : [];
        var (check, token) = _user is null || binding == HashedTokenBinding.Unique
            ? (FastTokenService.Check.Invalid, null)
            : await fast.VerifyAsync(_user, agent, _request.Mechanism, initiator, cb, _request.FastCount);
        if (check == FastTokenService.Check.Expired)
            return Fail(SaslFailures.CredentialsExpired, "The token has expired; log in with the password", countsAsGuess: false);
        if (check != FastTokenService.Check.Ok)
            return Fail(SaslFailures.NotAuthorized, null, countsAsGuess: true);
        UsedToken = token;
        return Succeed(_user!, HashedToken.Responder(token!.Token, cb));
    }

    private Step Succeed(string username, byte[]? additionalData)
    {
        s.Throttle.RecordSuccess(AuthThrottle.UserKey(username));
        s.Metrics.Login(success: true);
        var mechanism = _request?.Mechanism;
        Reset();
        Username = username;
        SucceededMechanism = mechanism;
        s.Logger.LogInformation("{User}@{Domain} authenticated with {Mechanism} from {Ip}", username, Domain, mechanism, remoteAddress);
        return new Step(Kind.Success, additionalData);
    }

    private Step Fail(string condition, string? text, bool countsAsGuess)
    {
        if (countsAsGuess)
        {
            s.Metrics.Login(success: false);
            s.Throttle.RecordFailure(AuthThrottle.IpKey(remoteAddress));
            if (_user is not null) s.Throttle.RecordFailure(AuthThrottle.UserKey(_user));
            s.Logger.LogInformation("Failed login for {User} from {Ip}", _user ?? "(unknown)", remoteAddress);
        }
        else
        {
            s.Logger.LogDebug("SASL {Mechanism} from {Ip} failed with {Condition} ({Detail}), not counted as a guess",
                _request?.Mechanism, remoteAddress, condition, text);
        }
        Reset();
        // RFC 6120 §6.4.5: a configurable number of retries, then the stream ends. Wrong passwords count against
        // that number; protocol mistakes (a client probing mechanisms) get a looser bound of their own.
        int maxGuesses = s.Options.Auth.MaxAttemptsPerStream;
        if ((countsAsGuess && ++_guesses >= maxGuesses) || ++_failures >= maxGuesses * 4)
            AttemptsExhausted = true;
        return new Step(Kind.Failure, Condition: condition, Text: text);
    }

    private void Reset()
    {
        _expect = Expect.Nothing;
        _scram = null;
        _user = null;
        _account = null;
    }

    private static string RetryText(TimeSpan wait) =>
        $"Too many failed logins; try again in {Math.Ceiling(wait.TotalSeconds)} s";

    private static string? NormalizeUser(string? user)
    {
        if (string.IsNullOrEmpty(user)) return null;
        try { return Precis.EnforceUsernameCaseMapped(user); }
        catch (FormatException) { return null; }
    }

    private bool AuthzidMatches(string authzid, string? user) =>
        user is not null && Jid.TryParse(authzid, out var j) && j.IsBare && j.Local == user && j.Domain == Domain;
}
