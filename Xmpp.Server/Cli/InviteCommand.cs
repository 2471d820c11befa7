using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Xmpp.Protocol;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Invites;
using Xmpp.Storage;

namespace Xmpp.Server.Cli;

/// xmppd invite create [--reusable N] [--expires 7d] [--inviter JID] [--admin]: an account invitation (XEP-0401), printed as the
/// web page's URL and the xmpp: URI. One of the AdminOperations: run inside the server when it runs (asked over the
/// admin socket), or on the stopped server's store. --admin makes each account it creates an administrator (AdminSet).
public static class InviteCommand
{
    public static async Task<int> RunAsync(IReadOnlyList<string> args, XmppServerOptions options, IStorage storage, TextWriter output, TextWriter error)
    {
        int Fail(string message)
        {
            error.WriteLine("error: " + message);
            return 1;
        }
        if (args.Count < 2 || args[1] != "create") return Fail("invite: usage is 'invite create [--reusable N] [--expires 7d] [--inviter JID] [--admin]'");
        var domains = new ServedDomains(options.Domains);
        int uses = 1;
        var lifetime = TimeSpan.FromDays(options.Invites.DefaultExpiryDays);
        string? inviter = null;
        bool admin = false;
        for (int i = 2; i < args.Count; i++)
        {
            var value = i + 1 < args.Count ? args[i + 1] : null;
            switch (args[i])
            {
                case "--reusable" when value is not null:
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out uses) || uses < 1)
                        return Fail($"--reusable needs a number of uses (1 or more), not '{value}'");
                    i++;
                    break;
                case "--expires" when value is not null:
                    if (ParseDuration(value) is not { } d) return Fail($"--expires needs a duration such as 7d, 12h or 30m, not '{value}'");
                    lifetime = d;
                    i++;
                    break;
                case "--inviter" when value is not null:
                    if (!Jid.TryParse(value.Contains('@') ? value : $"{value}@{domains.Default}", out var jid) || jid.Local is null || jid.Resource is not null
                        || !domains.Contains(jid.Domain))
                        return Fail($"--inviter must be an account of this server, such as alice@{domains.Default}");
                    if (await storage.Accounts.FindAsync(jid.Local) is null) return Fail($"{jid} does not exist");
                    inviter = jid.Bare.ToString();
                    i++;
                    break;
                case "--admin":
                    admin = true;
                    break;
                default:
                    return Fail($"invite create: unknown or incomplete option '{args[i]}'");
            }
        }
        var domain = inviter is null ? domains.Default : Jid.Parse(inviter).Domain;
        var store = new InviteStore(storage, TimeProvider.System);
        var (invite, token) = await store.CreateAsync(InviteKind.Account, domain, inviter, lifetime, uses, grantsAdmin: admin);
        await storage.FlushAsync();
        if (options.HttpPort != 0 && options.Invites.WebPages) await output.WriteLineAsync($"page: {InviteLinks.PageUrl(options, domain, token)}");
        await output.WriteLineAsync($"uri:  {InviteLinks.XmppUri(invite, token)}");
        await output.WriteLineAsync($"valid until {invite.Expires.UtcDateTime:yyyy-MM-dd HH:mm} UTC for {uses} account{(uses == 1 ? "" : "s")}"
            + (inviter is null ? "" : $", each subscribed with {inviter}") + (admin ? ", each made an administrator" : ""));
        return 0;
    }

    /// 7d, 12h, 30m: what people type; a bare number is days.
    public static TimeSpan? ParseDuration(string text)
    {
        if (text.Length == 0) return null;
        var unit = char.IsDigit(text[^1]) ? 'd' : char.ToLowerInvariant(text[^1]);
        var digits = char.IsDigit(text[^1]) ? text : text[..^1];
        if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1) return null;
        return unit switch { 'd' => TimeSpan.FromDays(n), 'h' => TimeSpan.FromHours(n), 'm' => TimeSpan.FromMinutes(n), _ => null };
    }
}
