namespace Xmpp.Protocol.Payloads;

/// <summary>One field of an XEP-0004 data form: its var, type, label, values and offered options.</summary>
public sealed record DataFormField(string Var, string? Type, string? Label, IReadOnlyList<string> Values, IReadOnlyList<string> Options)
{
    /// <summary>The first value, or null when the field has none.</summary>
    public string? Value => Values.Count > 0 ? Values[0] : null;
}
