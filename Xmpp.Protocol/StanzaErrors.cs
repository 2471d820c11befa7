using Xmpp.Protocol.Xml;

namespace Xmpp.Protocol;

/// <summary>RFC 6120 §8.3 stanza error conditions, their default types, and error replies.</summary>
public static class StanzaErrors
{
    public const string BadRequest = "bad-request";
    public const string Conflict = "conflict";
    public const string FeatureNotImplemented = "feature-not-implemented";
    public const string Forbidden = "forbidden";
    public const string Gone = "gone";
    public const string InternalServerError = "internal-server-error";
    public const string ItemNotFound = "item-not-found";
    public const string JidMalformed = "jid-malformed";
    public const string NotAcceptable = "not-acceptable";
    public const string NotAllowed = "not-allowed";
    public const string NotAuthorized = "not-authorized";
    public const string PolicyViolation = "policy-violation";
    public const string RecipientUnavailable = "recipient-unavailable";
    public const string Redirect = "redirect";
    public const string RegistrationRequired = "registration-required";
    public const string RemoteServerNotFound = "remote-server-not-found";
    public const string RemoteServerTimeout = "remote-server-timeout";
    public const string ResourceConstraint = "resource-constraint";
    public const string ServiceUnavailable = "service-unavailable";
    public const string SubscriptionRequired = "subscription-required";
    public const string UndefinedCondition = "undefined-condition";
    public const string UnexpectedRequest = "unexpected-request";

    /// <summary>The error type RFC 6120 §8.3.3 suggests for a condition.</summary>
    public static string DefaultType(string condition) => condition switch
    {
        BadRequest or JidMalformed or NotAcceptable or PolicyViolation or Redirect or Gone => "modify",
        Conflict or FeatureNotImplemented or NotAllowed or ServiceUnavailable or ItemNotFound
            or RemoteServerNotFound or UndefinedCondition => "cancel",
        Forbidden or NotAuthorized or RegistrationRequired or SubscriptionRequired => "auth",
        InternalServerError or RecipientUnavailable or RemoteServerTimeout or ResourceConstraint
            or UnexpectedRequest => "wait",
        _ => "cancel",
    };

    /// <summary>Builds an <c>&lt;error/&gt;</c> child with a condition, optional type override and text.</summary>
    public static Element CreateError(string condition, string? type = null, string? text = null, string? by = null)
    {
        var error = new Element("error", Ns.Client).SetAttr("type", type ?? DefaultType(condition));
        if (by is not null) error.SetAttr("by", by);
        error.Add(new Element(condition, Ns.StanzaErrors));
        if (!string.IsNullOrEmpty(text))
            error.Add(new Element("text", Ns.StanzaErrors).SetAttr("xml:lang", "en").SetText(text));
        return error;
    }

    /// <summary>
    /// Builds the error reply to a stanza (RFC 6120 §8.3.1): same name and id, addresses swapped,
    /// type "error", the original payload kept, and the error element appended.
    /// </summary>
    public static Element Reply(Element stanza, string condition, string? text = null, string? type = null)
    {
        var reply = new Element(stanza.Name, stanza.Namespace);
        if (stanza.Attr("id") is { } id) reply.SetAttr("id", id);
        if (stanza.Attr("from") is { } from) reply.SetAttr("to", from);
        if (stanza.Attr("to") is { } to) reply.SetAttr("from", to);
        reply.SetAttr("type", "error");
        foreach (var child in stanza.Elements())
            if (child.Name != "error") reply.Add(child.Clone());
        reply.Add(CreateError(condition, type, text));
        return reply;
    }
}
