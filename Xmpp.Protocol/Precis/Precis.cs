using System.Diagnostics.CodeAnalysis;

namespace Xmpp.Protocol.Precis;

/// <summary>
/// PRECIS enforcement (RFC 8264) for the profiles XMPP uses: UsernameCaseMapped and OpaqueString (RFC 8265),
/// Nickname (RFC 8266), and the preparation of domain names (RFC 7622 §3.2).
/// </summary>
/// <remarks>
/// The derived properties come from .NET's Unicode data (general categories and normalization) plus tables for the
/// properties .NET lacks; where those tables approximate the Unicode Character Database, the internal types say so.
/// Code inside namespace <c>Xmpp.Protocol</c> sees the namespace before this class, so it names the class as
/// <c>Precis.Precis</c> or through a using alias.
/// </remarks>
public static class Precis
{
    /// <summary>Enforces the UsernameCaseMapped profile (RFC 8265 §3.3), as for a localpart or SASL username, throwing <see cref="FormatException"/> when the string is not allowed.</summary>
    public static string EnforceUsernameCaseMapped(string s) =>
        UsernameCaseMapped.Enforce(Checked(s), out var error) ?? throw new FormatException(error);

    /// <summary>Enforces the UsernameCaseMapped profile, returning false instead of throwing.</summary>
    public static bool TryEnforceUsernameCaseMapped(string? s, [NotNullWhen(true)] out string? result)
    {
        result = s is null ? null : UsernameCaseMapped.Enforce(s, out _);
        return result is not null;
    }

    /// <summary>Enforces the OpaqueString profile (RFC 8265 §4.2), as for a password or resourcepart, throwing <see cref="FormatException"/> when the string is not allowed.</summary>
    public static string EnforceOpaqueString(string s) =>
        OpaqueString.Enforce(Checked(s), out var error) ?? throw new FormatException(error);

    /// <summary>Enforces the OpaqueString profile, returning false instead of throwing.</summary>
    public static bool TryEnforceOpaqueString(string? s, [NotNullWhen(true)] out string? result)
    {
        result = s is null ? null : OpaqueString.Enforce(s, out _);
        return result is not null;
    }

    /// <summary>Enforces the Nickname profile (RFC 8266 §2.3), which keeps case but maps spaces and applies NFKC, throwing <see cref="FormatException"/> when the string is not allowed.</summary>
    public static string EnforceNickname(string s) =>
        Nickname.Apply(Checked(s), forComparison: false, out var error) ?? throw new FormatException(error);

    /// <summary>Enforces the Nickname profile, returning false instead of throwing.</summary>
    public static bool TryEnforceNickname(string? s, [NotNullWhen(true)] out string? result)
    {
        result = s is null ? null : Nickname.Apply(s, forComparison: false, out _);
        return result is not null;
    }

    /// <summary>Returns the form two nicknames are compared in (RFC 8266 §2.4, enforcement plus case mapping), throwing <see cref="FormatException"/> when the string is not a valid nickname.</summary>
    public static string NicknameComparisonKey(string s) =>
        Nickname.Apply(Checked(s), forComparison: true, out var error) ?? throw new FormatException(error);

    /// <summary>True when both strings are valid nicknames that RFC 8266 §2.4 considers the same.</summary>
    public static bool NicknamesMatch(string? a, string? b)
    {
        if (a is null || b is null)
            return false;
        var left = Nickname.Apply(a, forComparison: true, out _);
        return left is not null && string.Equals(left, Nickname.Apply(b, forComparison: true, out _), StringComparison.Ordinal);
    }

    /// <summary>Prepares a domainpart (RFC 7622 §3.2): lowercase U-labels, NFC, no trailing dot, or a bracketed IPv6 literal; throws <see cref="FormatException"/> when it is not a valid domain.</summary>
    public static string PrepareDomain(string s) =>
        DomainPreparation.Prepare(Checked(s), out var error) ?? throw new FormatException(error);

    /// <summary>Prepares a domainpart, returning false instead of throwing.</summary>
    public static bool TryPrepareDomain(string? s, [NotNullWhen(true)] out string? result)
    {
        result = s is null ? null : DomainPreparation.Prepare(s, out _);
        return result is not null;
    }

    private static string Checked(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return s;
    }
}
