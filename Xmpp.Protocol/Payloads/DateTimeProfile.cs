// XEP-0082: XMPP Date and Time Profiles (the DateTime profile).
using System.Globalization;
using System.Text.RegularExpressions;

namespace Xmpp.Protocol.Payloads;

/// <summary>Reads and writes the XEP-0082 DateTime profile: CCYY-MM-DDThh:mm:ss[.sss]TZD with a mandatory zone.</summary>
public static partial class DateTimeProfile
{
    /// <summary>Formats an instant in UTC with milliseconds, e.g. 2024-06-01T08:00:00.000Z.</summary>
    public static string Format(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Parses the DateTime profile; false for anything else, including a missing zone (XEP-0082 §3.2).</summary>
    public static bool TryParse(string? text, out DateTimeOffset value)
    {
        value = default;
        if (text is null) return false;
        var m = Pattern().Match(text.Trim());
        if (!m.Success) return false;
        // .NET reads at most seven fractional digits; finer precision than a tick carries no meaning here.
        var fraction = m.Groups["frac"].Success ? "." + m.Groups["frac"].Value[..Math.Min(7, m.Groups["frac"].Value.Length)] : "";
        var zone = m.Groups["tz"].Value == "Z" ? "+00:00" : m.Groups["tz"].Value;
        return DateTimeOffset.TryParseExact(m.Groups["dt"].Value + fraction + zone,
            ["yyyy-MM-dd'T'HH:mm:sszzz", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz"], CultureInfo.InvariantCulture,
            DateTimeStyles.None, out value);
    }

    [GeneratedRegex(@"^(?<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?<frac>\d+))?(?<tz>Z|[+-]\d{2}:\d{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
