// XEP-0377: Spam Reporting, a report attached to a XEP-0191 block item.
using System.Text;
using Microsoft.Extensions.Logging;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Mam;
using Xmpp.Storage;

namespace Xmpp.Server.Modules.Blocking;

[Xep("XEP-0377", "0.3.1", "reports kept for the admins with copies of the reported messages from the reporter's archive")]
public sealed partial class BlockingModule
{
    public const int MaxReportText = 4096;
    public const int MaxReportedStanzas = 20;

    private readonly record struct ReportRequest(Jid Reported, string Reason, string? Text, List<string> StanzaIds);

    /// §3: &lt;report reason='URI'&gt; in a block item, with optional &lt;stanza-id/&gt;s (XEP-0359) of the offending
    /// messages and a &lt;text/&gt;. A report without a reason, or past the bounds, is a bad request and blocks nothing.
    private static bool TryReadReports(IqContext c, out List<ReportRequest> reports)
    {
        reports = [];
        foreach (var item in c.Payload.Elements("item", Ns.Blocking))
        {
            if (item.Child("report", Ns.Reporting) is not { } report) continue;
            var reason = report.Attr("reason");
            if (string.IsNullOrWhiteSpace(reason))
            {
                c.Error(StanzaErrors.BadRequest, "A report needs a reason (urn:xmpp:reporting:spam or urn:xmpp:reporting:abuse)");
                return false;
            }
            var ids = report.Elements("stanza-id", Ns.StanzaId).Select(e => e.Attr("id")).OfType<string>().ToList();
            var text = report.ChildText("text", Ns.Reporting);
            if (ids.Count > MaxReportedStanzas || text?.Length > MaxReportText)
            {
                c.Error(StanzaErrors.NotAcceptable, $"A report names at most {MaxReportedStanzas} messages and {MaxReportText} characters of text");
                return false;
            }
            reports.Add(new ReportRequest(Jid.Parse(item.Attr("jid")!), reason, text, ids));
        }
        return true;
    }

    /// Copies the reported messages out of the reporter's own archive, so the admins see what was sent even after the
    /// reporter deletes it; ids that are not in it (or not from the reported JID) are kept as ids only.
    private async ValueTask KeepReportAsync(Jid reporter, ReportRequest r)
    {
        var messages = new List<string>();
        if (r.StanzaIds.Count > 0)
        {
            var page = await storage.Archive(MamModule.Collection).QueryAsync(
                new ArchiveQuery(reporter.Local!, Max: MaxReportedStanzas, StanzaIds: r.StanzaIds));
            foreach (var record in page.Records)
                if (Jid.TryParse(record.With, out var with) && with.Bare == r.Reported.Bare)
                    messages.Add(Encoding.UTF8.GetString(record.Payload));
        }
        var report = new AbuseReport(DateTimeOffset.UtcNow, reporter.ToString(), r.Reported.ToString(), r.Reason, r.Text, r.StanzaIds, messages);
        if (await reports.AddAsync(report))
            logger.LogWarning("{Reporter} reported {Reported} for {Reason} ({Count} message(s) attached)", reporter, r.Reported, r.Reason, messages.Count);
        else
            logger.LogWarning("A report by {Reporter} against {Reported} was not kept: the reporter's daily limit or the report store is full", reporter, r.Reported);
    }
}
