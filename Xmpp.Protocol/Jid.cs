using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using Xmpp.Protocol.Precis;

namespace Xmpp.Protocol;

/// <summary>
/// An XMPP address (RFC 7622): an optional localpart, a domainpart and an optional resourcepart, each held in its
/// canonical (prepared and enforced) form, so that equal addresses have equal strings.
/// </summary>
public sealed class Jid : IEquatable<Jid>
{
    /// <summary>The largest size of each part in UTF-8 octets after preparation (RFC 7622 §3.2, §3.3, §3.4).</summary>
    public const int MaxPartBytes = 1023;

    // No preparation shrinks a string by more than this factor in UTF-16 units (NFC composes at most four units
    // into one three-octet character), so longer input is rejected before the Unicode work is spent on it.
    private const int MaxRawChars = 4 * MaxPartBytes;

    // RFC 7622 §3.3.1: allowed by the IdentifierClass but not in a localpart (space is already excluded by it).
    private static readonly SearchValues<char> ForbiddenInLocal = SearchValues.Create("\"&'/:<>@ ");

    private string? _full;
    private Jid? _bare;

    private Jid(string? local, string domain, string? resource, string? full)
    {
        Local = local;
        Domain = domain;
        Resource = resource;
        _full = full;
    }

    /// <summary>The localpart, or null when the address has none.</summary>
    public string? Local { get; }

    /// <summary>The domainpart: lowercase U-labels without a trailing dot, or an IP literal.</summary>
    public string Domain { get; }

    /// <summary>The resourcepart with its case preserved, or null when the address has none.</summary>
    public string? Resource { get; }

    /// <summary>True when the address has no resourcepart.</summary>
    public bool IsBare => Resource is null;

    /// <summary>True when the address has a resourcepart.</summary>
    public bool IsFull => Resource is not null;

    /// <summary>True when the address is only a domainpart, such as a server or component.</summary>
    public bool IsDomain => Local is null && Resource is null;

    /// <summary>The address without its resourcepart: this instance when already bare, otherwise a cached copy.</summary>
    public Jid Bare => Resource is null ? this : _bare ??= new Jid(Local, Domain, null, null);

    /// <summary>Parses and prepares a JID string, throwing <see cref="JidFormatException"/> when it is not a valid address.</summary>
    public static Jid Parse(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return ParseCore(s, out var error) ?? throw new JidFormatException(error!);
    }

    /// <summary>Parses and prepares a JID string, returning false when it is null or not a valid address.</summary>
    public static bool TryParse(string? s, [NotNullWhen(true)] out Jid? jid)
    {
        jid = s is null ? null : ParseCore(s, out _);
        return jid is not null;
    }

    /// <summary>Builds a JID from its parts, preparing and enforcing each one and throwing <see cref="JidFormatException"/> when a part is invalid; null means absent, an empty string is an error.</summary>
    public static Jid Create(string? local, string domain, string? resource = null)
    {
        ArgumentNullException.ThrowIfNull(domain);
        return CreateCore(local, domain, resource, out var error) ?? throw new JidFormatException(error!);
    }

    /// <summary>Builds a JID from its parts, returning false when a part is invalid.</summary>
    public static bool TryCreate(string? local, string? domain, string? resource, [NotNullWhen(true)] out Jid? jid)
    {
        jid = domain is null ? null : CreateCore(local, domain, resource, out _);
        return jid is not null;
    }

    /// <summary>Returns this address with the given resourcepart (enforced as OpaqueString), or the bare address when it is null.</summary>
    public Jid WithResource(string? resource)
    {
        if (resource is null)
            return Bare;
        var prepared = PrepareResource(resource, out var error) ?? throw new JidFormatException(error!);
        if (string.Equals(prepared, Resource, StringComparison.Ordinal))
            return this;
        return new Jid(Local, Domain, prepared, null) { _bare = _bare ?? (IsBare ? this : null) };
    }

    /// <summary>True when the other address has the same localpart and domainpart, whatever the resources.</summary>
    public bool BareEquals(Jid? other) =>
        other is not null
        && string.Equals(Local, other.Local, StringComparison.Ordinal)
        && string.Equals(Domain, other.Domain, StringComparison.Ordinal);

    /// <summary>The canonical string form, <c>local@domain/resource</c> with absent parts and their separators left out.</summary>
    public override string ToString() => _full ??= Format(Local, Domain, Resource);

    /// <summary>True when both addresses have the same canonical string.</summary>
    public bool Equals(Jid? other)
    {
        // The parts are canonical and cannot contain the separators that precede them ('@' is barred from
        // localparts and domainparts, '/' from both), so equal parts mean equal strings and the other way round.
        if (other is null)
            return false;
        return ReferenceEquals(this, other)
            || (string.Equals(Domain, other.Domain, StringComparison.Ordinal)
                && string.Equals(Local, other.Local, StringComparison.Ordinal)
                && string.Equals(Resource, other.Resource, StringComparison.Ordinal));
    }

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Jid other && Equals(other);

    /// <summary>The hash of the canonical string.</summary>
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(ToString());

    /// <summary>True when both are null or both have the same canonical string.</summary>
    public static bool operator ==(Jid? left, Jid? right) => left is null ? right is null : left.Equals(right);

    /// <summary>True unless both are null or both have the same canonical string.</summary>
    public static bool operator !=(Jid? left, Jid? right) => !(left == right);

    private static Jid? ParseCore(string s, out string? error)
    {
        // RFC 7622 §3.1: the resourcepart starts after the first '/', the localpart ends at the last '@' before it.
        var slash = s.IndexOf('/');
        var domainEnd = slash < 0 ? s.Length : slash;
        var at = s.AsSpan(0, domainEnd).LastIndexOf('@');
        if (at == 0)
        {
            error = "The localpart is empty.";
            return null;
        }
        if (at + 1 == domainEnd)
        {
            error = "The domainpart is empty.";
            return null;
        }
        if (slash >= 0 && slash == s.Length - 1)
        {
            error = "The resourcepart is empty.";
            return null;
        }

        // The profiles return their input instance when nothing changes, which lets an already canonical string
        // (the common case on the wire) become the cached ToString() without building a new one.
        var unchanged = true;
        string? local = null;
        if (at > 0)
        {
            var raw = s[..at];
            local = PrepareLocal(raw, out error);
            if (local is null)
                return null;
            unchanged &= ReferenceEquals(local, raw);
        }

        var rawDomain = at < 0 && slash < 0 ? s : s[(at + 1)..domainEnd];
        var domain = PrepareDomainPart(rawDomain, out error);
        if (domain is null)
            return null;
        unchanged &= ReferenceEquals(domain, rawDomain);

        string? resource = null;
        if (slash >= 0)
        {
            var raw = s[(slash + 1)..];
            resource = PrepareResource(raw, out error);
            if (resource is null)
                return null;
            unchanged &= ReferenceEquals(resource, raw);
        }

        return new Jid(local, domain, resource, unchanged ? s : null);
    }

    private static Jid? CreateCore(string? local, string domain, string? resource, out string? error)
    {
        string? preparedLocal = null;
        if (local is not null && (preparedLocal = PrepareLocal(local, out error)) is null)
            return null;
        var preparedDomain = PrepareDomainPart(domain, out error);
        if (preparedDomain is null)
            return null;
        string? preparedResource = null;
        if (resource is not null && (preparedResource = PrepareResource(resource, out error)) is null)
            return null;
        error = null;
        return new Jid(preparedLocal, preparedDomain, preparedResource, null);
    }

    // RFC 7622 §3.3: UsernameCaseMapped, then the characters §3.3.1 bars, then the length.
    private static string? PrepareLocal(string raw, out string? error)
    {
        if (raw.Length == 0)
        {
            error = "The localpart is empty.";
            return null;
        }
        if (raw.Length > MaxRawChars)
        {
            error = "The localpart is longer than 1023 octets.";
            return null;
        }
        var local = UsernameCaseMapped.Enforce(raw, out var reason);
        if (local is null)
        {
            error = "Invalid localpart: " + reason;
            return null;
        }
        var forbidden = local.AsSpan().IndexOfAny(ForbiddenInLocal);
        if (forbidden >= 0)
        {
            error = $"The localpart must not contain '{local[forbidden]}'.";
            return null;
        }
        if (Encoding.UTF8.GetByteCount(local) > MaxPartBytes)
        {
            error = "The localpart is longer than 1023 octets.";
            return null;
        }
        error = null;
        return local;
    }

    // RFC 7622 §3.2.
    private static string? PrepareDomainPart(string raw, out string? error)
    {
        if (raw.Length == 0)
        {
            error = "The domainpart is empty.";
            return null;
        }
        if (raw.Length > MaxRawChars)
        {
            error = "The domainpart is longer than 1023 octets.";
            return null;
        }
        var domain = DomainPreparation.Prepare(raw, out var reason);
        if (domain is null)
        {
            error = "Invalid domainpart: " + reason;
            return null;
        }
        // IDNA output never holds these, but a bracketed literal or a future preparation change must not smuggle in
        // a separator that would make the string form ambiguous.
        if (domain.AsSpan().IndexOfAny('@', '/') >= 0)
        {
            error = "The domainpart must not contain '@' or '/'.";
            return null;
        }
        error = null;
        return domain;
    }

    // RFC 7622 §3.4: OpaqueString, then the length; '@' and '/' are allowed here.
    private static string? PrepareResource(string raw, out string? error)
    {
        if (raw.Length == 0)
        {
            error = "The resourcepart is empty.";
            return null;
        }
        if (raw.Length > MaxRawChars)
        {
            error = "The resourcepart is longer than 1023 octets.";
            return null;
        }
        var resource = OpaqueString.Enforce(raw, out var reason);
        if (resource is null)
        {
            error = "Invalid resourcepart: " + reason;
            return null;
        }
        if (Encoding.UTF8.GetByteCount(resource) > MaxPartBytes)
        {
            error = "The resourcepart is longer than 1023 octets.";
            return null;
        }
        error = null;
        return resource;
    }

    private static string Format(string? local, string domain, string? resource) => (local, resource) switch
    {
        (null, null) => domain,
        (null, _) => string.Concat(domain, "/", resource),
        (_, null) => string.Concat(local, "@", domain),
        _ => string.Concat(local, "@", domain, "/", resource),
    };
}
