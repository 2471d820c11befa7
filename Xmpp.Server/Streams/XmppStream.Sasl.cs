using Xmpp.Protocol;
using Xmpp.Protocol.Sasl;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Streams;

public sealed partial class XmppStream
{
    private SaslAuthenticator? _auth;
    private HashSet<string>? _offered;

    private SaslAuthenticator Auth => _auth ??= new SaslAuthenticator(_s, _s.FastTokens, RemoteAddress);

    /// RFC 6120 §6.4: auth, response and abort.
    private async ValueTask<StreamAction> HandleSaslAsync(Element e)
    {
        var auth = Auth;
        auth.Domain = _domain;
        auth.ChannelBinding = ChannelBindingData();
        SaslAuthenticator.Step step;
        switch (e.Name)
        {
            case "auth":
                _offered ??= [.. OfferedMechanisms(sasl2: false)];
                step = TryDecode(e, out var initial)
                    ? await auth.StartAsync(new SaslRequest(e.Attr("mechanism") ?? "", initial, _offered)
                    {
                        ChannelBindingTypes = AdvertisedChannelBindingTypes(),
                    })
                    : auth.Reject(SaslFailures.IncorrectEncoding, null);
                break;
            case "response":
                step = TryDecode(e, out var data) ? await auth.RespondAsync(data ?? []) : await auth.RespondAsync(null);
                break;
            case "abort":
                step = auth.Abort();
                break;
            default:
                throw new XmppStreamException(StreamErrors.UnsupportedStanzaType, $"Unexpected SASL element {e.Name}");
        }
        switch (step.Kind)
        {
            case SaslAuthenticator.Kind.Challenge:
                var challenge = new Element("challenge", Ns.Sasl);
                if (step.Data is { Length: > 0 }) challenge.SetText(Convert.ToBase64String(step.Data));
                await WriteDirectAsync(challenge);
                return StreamAction.Continue;
            case SaslAuthenticator.Kind.Success:
                _username = auth.Username;
                var success = new Element("success", Ns.Sasl);
                if (step.Data is not null) success.SetText(Convert.ToBase64String(step.Data));
                await WriteDirectAsync(success);
                // RFC 6120 §6.4.6: the client restarts the stream; features then offer binding.
                _parser.Reset();
                _state = StreamState.Authenticated;
                _headerSent = false;
                return StreamAction.Continue;
            default:
                await WriteDirectAsync(SaslFailure(Ns.Sasl, step.Condition!, step.Text));
                if (auth.AttemptsExhausted)
                    throw new XmppStreamException(StreamErrors.PolicyViolation, "Too many failed authentication attempts");
                return StreamAction.Continue;
        }
    }

    /// RFC 6120 §6.5 (and XEP-0388 §2.6.2, which reuses the conditions inside its own failure element).
    private static Element SaslFailure(string ns, string condition, string? text)
    {
        var failure = new Element("failure", ns).Add(new Element(condition, Ns.Sasl));
        if (text is not null) failure.Add(new Element("text", ns).SetAttr("xml:lang", "en").SetText(text));
        return failure;
    }

    private static Element SaslFailure(string condition, string? text) => SaslFailure(Ns.Sasl, condition, text);

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
