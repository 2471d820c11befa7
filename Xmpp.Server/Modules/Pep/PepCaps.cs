// XEP-0115: Entity Capabilities, used for XEP-0163 §4.2 notification filtering (+notify features).
using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;
using Xmpp.Server.Routing;

namespace Xmpp.Server.Modules.Pep;

/// Learns what a client supports from the caps in its presence: a verification string seen before is answered from the
/// cache, a new one is resolved once with disco#info to that client (XEP-0115 §6.2) and cached when the hash checks out
/// (§5.4); an answer that does not match its hash counts only for the resource that gave it.
public sealed class PepCaps(IRouter router, ServedDomains domains, ILogger<PepCaps> logger)
{
    private static readonly TimeSpan QueryTimeout = TimeSpan.FromSeconds(15);
    private readonly ConcurrentDictionary<string, FrozenSet<string>> _verified = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (string Key, FrozenSet<string> Features)> _perJid = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Task<(FrozenSet<string> Features, bool Verified)>> _pending = new(StringComparer.Ordinal);

    /// Disco#info queries sent so far (tests check that a known hash is not asked again).
    public int Queries => Volatile.Read(ref _queries);
    private int _queries;

    public readonly record struct Caps(string Node, string Ver, string Hash)
    {
        public string Key => Hash + " " + Ver;
    }

    public static Caps? Read(Element? presence)
    {
        if (presence?.Child("c", Ns.Caps) is not { } c) return null;
        var node = c.Attr("node");
        var ver = c.Attr("ver");
        var hash = c.Attr("hash");
        // §6.3: a 'hash' attribute is required; legacy caps without it carry no verifiable feature list.
        if (string.IsNullOrEmpty(node) || string.IsNullOrEmpty(ver) || string.IsNullOrEmpty(hash)) return null;
        return new Caps(node, ver, hash);
    }

    /// The features of the resource that sent this presence, when already known.
    public FrozenSet<string>? Known(Jid full, Element? presence)
    {
        if (Read(presence) is not { } caps) return null;
        if (_verified.TryGetValue(caps.Key, out var features)) return features;
        return _perJid.TryGetValue(full.ToString(), out var own) && own.Key == caps.Key ? own.Features : null;
    }

    public async Task<FrozenSet<string>> ResolveAsync(Jid full, Caps caps)
    {
        if (_verified.TryGetValue(caps.Key, out var known)) return known;
        var jid = full.ToString();
        if (_perJid.TryGetValue(jid, out var own) && own.Key == caps.Key) return own.Features;
        var task = _pending.GetOrAdd(caps.Key + " " + jid, _ => QueryAsync(full, caps));
        try
        {
            var (features, verified) = await task;
            if (verified) _verified[caps.Key] = features;
            else _perJid[jid] = (caps.Key, features);
            return features;
        }
        finally
        {
            _pending.TryRemove(caps.Key + " " + jid, out _);
        }
    }

    public void Forget(Jid full) => _perJid.TryRemove(full.ToString(), out _);

    private async Task<(FrozenSet<string>, bool)> QueryAsync(Jid full, Caps caps)
    {
        Interlocked.Increment(ref _queries);
        var iq = new Element("iq", Ns.Client).SetAttr("type", "get").SetAttr("from", domains.Default).SetAttr("to", full.ToString())
            .Add(new Element("query", Ns.DiscoInfo).SetAttr("node", caps.Node + "#" + caps.Ver));
        var reply = await router.RequestAsync(iq, QueryTimeout);
        // Only the queried resource may answer: anything else (an error, a timeout, a reply from another entity that
        // guessed the id) leaves the resource with no features rather than someone else's.
        if (reply?.Attr("type") != "result" || reply.Attr("from") != full.ToString() || reply.Child("query", Ns.DiscoInfo) is not { } query)
        {
            logger.LogDebug("No caps answer from {Jid} for {Ver}", full, caps.Ver);
            return (FrozenSet<string>.Empty, false);
        }
        var features = query.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).OfType<string>().ToFrozenSet(StringComparer.Ordinal);
        var computed = VerificationString(query, caps.Hash);
        return (features, computed is not null && computed == caps.Ver);
    }

    /// XEP-0115 §5.1 verification string of a disco#info result, or null for an unknown hash function or a result
    /// §5.4 says not to trust (duplicate identities or features, forms with a FORM_TYPE twice).
    public static string? VerificationString(Element query, string hashName)
    {
        var sb = new StringBuilder();
        var identities = query.Elements("identity", Ns.DiscoInfo)
            .Select(i => $"{i.Attr("category")}/{i.Attr("type")}/{i.Attr("xml:lang")}/{i.Attr("name")}")
            .ToList();
        if (identities.Distinct(StringComparer.Ordinal).Count() != identities.Count) return null;
        foreach (var i in identities.Order(StringComparer.Ordinal)) sb.Append(i).Append('<');
        var features = query.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var") ?? "").ToList();
        if (features.Distinct(StringComparer.Ordinal).Count() != features.Count) return null;
        foreach (var f in features.Order(StringComparer.Ordinal)) sb.Append(f).Append('<');
        var forms = query.Elements("x", Ns.DataForms)
            .Select(x => DataForm.TryParse(x, out var form, out _) ? form : null).OfType<DataForm>().Where(f => f.FormType is not null).ToList();
        if (forms.Select(f => f.FormType).Distinct(StringComparer.Ordinal).Count() != forms.Count) return null;
        foreach (var form in forms.OrderBy(f => f.FormType, StringComparer.Ordinal))
        {
            sb.Append(form.FormType).Append('<');
            foreach (var name in form.FieldNames.Where(n => n != "FORM_TYPE").Order(StringComparer.Ordinal))
            {
                sb.Append(name).Append('<');
                foreach (var v in form.Values(name).Order(StringComparer.Ordinal)) sb.Append(v).Append('<');
            }
        }
        var bytes = Encoding.UTF8.GetBytes(sb.ToString());
        byte[]? digest = hashName switch
        {
            "sha-1" => SHA1.HashData(bytes),
            "sha-256" => SHA256.HashData(bytes),
            "sha-512" => SHA512.HashData(bytes),
            _ => null,
        };
        return digest is null ? null : Convert.ToBase64String(digest);
    }
}
