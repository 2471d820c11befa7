// The admins' view of XEP-0377 reports: ad-hoc commands to list and clear them (the CLI reads the same store).
using System.Globalization;
using System.Text;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Server.Modules.AdHoc;

namespace Xmpp.Server.Modules.Blocking;

public sealed class AbuseReportsModule(AdHocCommands commands, AbuseReports reports) : IXmppModule
{
    public const string ListNode = "urn:xmppd:abuse-reports#list";
    public const string ClearNode = "urn:xmppd:abuse-reports#clear";

    public void Register(IModuleBuilder module)
    {
        commands.Add(new AdHocCommand(ListNode, "List Abuse Reports", CommandAccess.Admins, null, async (_, _) =>
        {
            var all = await reports.ListAsync();
            // One text-multi field per report: XEP-0004 results of that shape show as readable text in every client.
            var form = new DataForm("result", ListNode);
            for (int i = 0; i < all.Count; i++) form.AddField($"report-{i + 1}", "text-multi", Describe(all[i]).Split('\n'));
            return new AdHocResult($"{all.Count} report(s)", Form: form);
        }));
        commands.Add(new AdHocCommand(ClearNode, "Clear Abuse Reports", CommandAccess.Admins, null, async (_, _) =>
            AdHocResult.Done($"{await reports.ClearAsync()} report(s) removed")));
    }

    /// A report as lines of text, for the ad-hoc listing and the CLI.
    public static string Describe(AbuseReport r)
    {
        var sb = new StringBuilder();
        sb.Append(r.Time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture))
          .Append(": ").Append(r.Reporter).Append(" reported ").Append(r.Reported).Append(" for ").Append(r.Reason);
        if (!string.IsNullOrEmpty(r.Text)) sb.Append('\n').Append("  says: ").Append(r.Text);
        if (r.StanzaIds.Count > 0) sb.Append('\n').Append("  stanza-ids: ").Append(string.Join(", ", r.StanzaIds));
        foreach (var m in r.Messages) sb.Append('\n').Append("  message: ").Append(m);
        return sb.ToString();
    }
}
