using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;

namespace Xmpp.Server.Modules.Mam;

/// A parsed XEP-0313 query: the form's filters (§4.1), the RSM window (XEP-0059) and whether the page is flipped.
public sealed record MamQuery(
    string? QueryId,
    Jid? With,
    DateTimeOffset? Start,
    DateTimeOffset? End,
    string? AfterId,
    string? BeforeId,
    IReadOnlyList<string>? Ids,
    ResultSetRequest? Set,
    bool FlipPage)
{
    private static readonly HashSet<string> KnownFields = new(StringComparer.Ordinal)
    {
        "FORM_TYPE", "with", "start", "end", "after-id", "before-id", "ids",
    };

    /// The blank form of XEP-0313 §4.1.5, with the fields this server understands.
    public static Element Form() => new DataForm("form", Ns.Mam)
        .AddField("with", "jid-single")
        .AddField("start", "text-single")
        .AddField("end", "text-single")
        .AddField("before-id", "text-single")
        .AddField("after-id", "text-single")
        // §4.1.5: 'ids' is an open list (XEP-0122).
        .AddField(DataForm.Field("ids", "list-multi")
            .Add(new Element("validate", Ns.DataFormsValidate).SetAttr("datatype", "xs:string").Add(new Element("open", Ns.DataFormsValidate))))
        .Element;

    /// Reads a query; on failure returns null with the stanza error condition and a text for the client. A room
    /// archive accepts a full JID in 'with' (an occupant JID); a user archive only a bare one.
    public static MamQuery? Parse(Element query, out string condition, out string? text, bool fullWith = false)
    {
        condition = StanzaErrors.BadRequest;
        text = null;
        try
        {
            return ParseOrThrow(query, fullWith, ref condition, ref text);
        }
        catch (FormatException ex)
        {
            text = ex.Message;
            return null;
        }
    }

    private static MamQuery? ParseOrThrow(Element query, bool fullWith, ref string condition, ref string? text)
    {
        Jid? with = null;
        DateTimeOffset? start = null, end = null;
        string? afterId = null, beforeId = null;
        IReadOnlyList<string>? ids = null;
        if (query.Child("x", Ns.DataForms) is { } x)
        {
            var form = DataForm.Parse(x);
            if (form.Type != "submit") throw new FormatException("the query form must be of type submit");
            if (form.FormType is { } formType && formType != Ns.Mam) throw new FormatException($"unknown FORM_TYPE '{formType}'");
            if (form.FieldNames.FirstOrDefault(k => !KnownFields.Contains(k)) is { } unknown)
            {
                // §4.1.5: a field the server does not know.
                condition = StanzaErrors.FeatureNotImplemented;
                text = $"field '{unknown}' is not supported";
                return null;
            }
            if (form.Value("with") is { } w)
            {
                if (!Jid.TryParse(w.Trim(), out with))
                {
                    condition = StanzaErrors.JidMalformed;
                    text = "with is not a JID";
                    return null;
                }
                if (with.IsFull && !fullWith)
                {
                    // Archive records keep the contact's bare JID only (§4.1.1 allows the bare match only for a bare 'with').
                    condition = StanzaErrors.FeatureNotImplemented;
                    text = "with must be a bare JID";
                    return null;
                }
            }
            start = Time(form, "start");
            end = Time(form, "end");
            afterId = NonEmpty(form, "after-id");
            beforeId = NonEmpty(form, "before-id");
            if (form.Values("ids") is { Count: > 0 } values) ids = values.Select(v => v.Trim()).ToList();
        }
        var set = query.Child("set", Ns.Rsm) is { } s ? ResultSetRequest.Parse(s) : null;
        return new MamQuery(query.Attr("queryid"), with, start, end, afterId, beforeId, ids, set,
            query.Child("flip-page", Ns.Mam) is not null);
    }

    private static DateTimeOffset? Time(DataForm form, string var)
    {
        var value = form.Value(var);
        if (value is null) return null;
        // §4.1.2: XEP-0082 DateTime.
        return DateTimeProfile.TryParse(value, out var t) ? t : throw new FormatException($"{var} is not a XEP-0082 DateTime");
    }

    private static string? NonEmpty(DataForm form, string var) =>
        form.Value(var) is { } v ? (v.Trim() is { Length: > 0 } t ? t : throw new FormatException($"{var} is empty")) : null;
}
