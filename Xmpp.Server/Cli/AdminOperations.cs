using System.Diagnostics;
using Xmpp.Protocol;
using Xmpp.Server.Hosting;
using Xmpp.Server.Modules.Muc;
using Xmpp.Storage;

namespace Xmpp.Server.Cli;

/// The admin commands that touch data: user, session, room and stats. The same code runs inside the server (asked over
/// the admin socket, so it goes through the server's services and their caches) and in the CLI on a stopped server's
/// store. Each writes one line per result to output and per problem to error, and returns an exit code.
public sealed class AdminOperations(AdminTarget target, TextWriter output, TextWriter error)
{
    /// Verbs handled here; the CLI sends these to a running server.
    public static readonly IReadOnlySet<string> Verbs = new HashSet<string>(StringComparer.Ordinal) { "user", "session", "room", "stats", "backup", "invite", "block", "report" };

    private ServedDomains Domains => target.Domains;

    public async Task<int> RunAsync(IReadOnlyList<string> words)
    {
        string verb = words.Count > 0 ? words[0] : "", sub = words.Count > 1 ? words[1] : "";
        return (verb, sub) switch
        {
            ("user", _) => await UserAsync(words),
            ("session", "list") => SessionList(),
            ("session", "kick") when words.Count >= 3 => SessionKick(words[2]),
            ("session", _) => Fail("session: usage is 'session list' or 'session kick JID'"),
            ("room", "list") => await RoomListAsync(),
            ("room", "destroy") when words.Count >= 3 => await RoomDestroyAsync(words[2], words.Count >= 4 ? words[3] : null),
            ("room", _) => Fail("room: usage is 'room list' or 'room destroy JID [REASON]'"),
            ("stats", _) => await StatsAsync(),
            ("backup", _) when words.Count == 2 => await BackupAsync(words[1]),
            ("backup", _) => Fail("backup: usage is 'backup DIR' (a new or empty folder)"),
            ("block", "list") => BlockList(),
            ("block", "add" or "del") when words.Count == 3 => await BlockAsync(words[1], words[2]),
            ("block", _) => Fail("block: usage is 'block add JID-or-DOMAIN', 'block del JID-or-DOMAIN' or 'block list'"),
            ("report", "list") => await ReportListAsync(),
            ("report", "clear") => await ReportClearAsync(),
            ("report", _) => Fail("report: usage is 'report list' or 'report clear'"),
            ("invite", _) => await InviteCommand.RunAsync(words, target.Options, target.Storage, output, error),
            _ => Fail($"unknown admin command '{string.Join(' ', words)}'"),
        };
    }

    private async Task<int> UserAsync(IReadOnlyList<string> args)
    {
        if (args.Count < 2) return Fail("user: say add, passwd, del or list");
        var accounts = target.Accounts;
        switch (args[1])
        {
            case "list":
                foreach (var name in (await target.Storage.Accounts.ListAsync()).Order(StringComparer.Ordinal))
                    output.WriteLine($"{name}@{Domains.Default}");
                return 0;
            case "add" or "passwd" or "del" when args.Count >= 3:
                if (!TryUser(args[2], out var user, out var problem)) return Fail(problem);
                if (args[1] == "del")
                {
                    if (!await accounts.DeleteAsync(user)) return Fail($"{user}@{Domains.Default} does not exist");
                    output.WriteLine($"deleted {user}@{Domains.Default}");
                    // As after an in-band removal (XEP-0077 §3.2): the sessions of an account that no longer exists end.
                    if (target.Live is { } live)
                        foreach (var domain in Domains.All)
                            foreach (var e in live.Sessions.Get(Jid.Create(user, domain)).Entries)
                            {
                                e.Sink.Close(StreamErrors.NotAuthorized, "The account has been removed");
                                output.WriteLine($"ended the session of {e.Jid}");
                            }
                    return 0;
                }
                var password = args.Count >= 4 ? args[3] : "";
                if (string.IsNullOrEmpty(password)) return Fail("the password is empty");
                try { Xmpp.Protocol.Sasl.SaslPrep.Prepare(password); }
                catch (FormatException ex) { return Fail("the password cannot be used: " + ex.Message); }
                if (args[1] == "add")
                {
                    if (!await accounts.CreateAsync(user, password)) return Fail($"{user}@{Domains.Default} exists already");
                    output.WriteLine($"created {user}@{Domains.Default}");
                }
                else
                {
                    if (!await accounts.ChangePasswordAsync(user, password)) return Fail($"{user}@{Domains.Default} does not exist");
                    output.WriteLine($"password of {user}@{Domains.Default} changed");
                }
                return 0;
            default:
                return Fail("user: usage is 'user add JID [PASSWORD]', 'user passwd JID [PASSWORD]', 'user del JID' or 'user list'");
        }
    }

    private int BlockList()
    {
        foreach (var (entry, source) in target.Blocks.Entries) output.WriteLine($"{entry} ({source})");
        return 0;
    }

    /// XEP-0377 reports, oldest first: a line per report, then its text and the reported messages indented.
    private async Task<int> ReportListAsync()
    {
        var reports = await target.Reports.ListAsync();
        foreach (var r in reports)
        {
            output.WriteLine($"{r.Time.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'} {r.Reporter} reported {r.Reported} for {r.Reason}" +
                (r.StanzaIds.Count > 0 ? $" (stanza-ids {string.Join(' ', r.StanzaIds)})" : ""));
            if (r.Text is { Length: > 0 } text) output.WriteLine("  text: " + OneLine(text));
            foreach (var message in r.Messages) output.WriteLine("  message: " + OneLine(message));
        }
        output.WriteLine($"{reports.Count} report{(reports.Count == 1 ? "" : "s")}");
        return 0;
    }

    // A reporter's text or a stored stanza may hold line breaks; one report stays one block of lines.
    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private async Task<int> ReportClearAsync()
    {
        var removed = await target.Reports.ClearAsync();
        output.WriteLine($"removed {removed} report{(removed == 1 ? "" : "s")}");
        return 0;
    }

    /// On a running server the change takes effect with the next stanza, and links to a newly blocked domain close.
    private async Task<int> BlockAsync(string verb, string text)
    {
        if (!Limits.BlockList.TryNormalize(text, out var entry, out var problem)) return Fail(problem);
        if (verb == "add")
        {
            if (!await target.Blocks.AddAsync(entry, "xmppd block add")) return Fail($"{entry} is on the block list already");
            output.WriteLine($"blocked {entry}");
            return 0;
        }
        if (!await target.Blocks.RemoveAsync(entry, "xmppd block del"))
            return Fail(target.Blocks.Entries.Any(e => e.Entry == entry)
                ? $"{entry} is blocked by the configuration (Xmpp:Blocked): remove it there and restart"
                : $"{entry} is not on the block list");
        output.WriteLine($"unblocked {entry}");
        return 0;
    }

    private int SessionList()
    {
        if (target.Live is not { } live) return NotRunning("session list");
        foreach (var e in live.Sessions.All().OrderBy(e => e.Jid.ToString(), StringComparer.Ordinal))
            output.WriteLine($"{e.Jid} {(e.Available ? "available" : "unavailable")} priority {e.Priority}");
        return 0;
    }

    private int SessionKick(string text)
    {
        if (target.Live is not { } live) return NotRunning("session kick");
        Jid jid;
        try { jid = Jid.Parse(text); }
        catch (FormatException ex) { return Fail($"{text} is not a valid JID: {ex.Message}"); }
        var entries = jid.Resource is null
            ? live.Sessions.Get(jid).Entries.ToList()
            : live.Sessions.Find(jid) is { } one ? [one] : [];
        if (entries.Count == 0) return Fail($"{jid} has no session");
        foreach (var e in entries)
        {
            // RFC 6120 §4.9.3.14: the stream ends by the server's policy; the text says whose.
            e.Sink.Close(StreamErrors.PolicyViolation, "Disconnected by the server's administrator");
            output.WriteLine($"kicked {e.Jid}");
        }
        return 0;
    }

    private async Task<int> RoomListAsync()
    {
        foreach (var (room, summary, live, node) in await RoomsAsync())
            output.WriteLine($"{room} {(summary.Persistent ? "persistent" : "temporary")} {(summary.Public ? "public" : "hidden")}"
                + (live ? "" : " (stored)") + (summary.Title.Length > 0 ? $" \"{summary.Title}\"" : "") + (node is null ? "" : $" (on {node})"));
        return 0;
    }

    /// Rooms with their summaries; Live is false when read from the store of a stopped server; Node names the cluster
    /// node that hosts a temporary room when it is not the one asked.
    private async Task<List<(Jid Room, MucRoomSummary Summary, bool Live, string? Node)>> RoomsAsync()
    {
        var list = new List<(Jid, MucRoomSummary, bool, string?)>();
        if (target.Live is { } live)
        {
            foreach (var (domain, service) in live.Muc.Services.OrderBy(s => s.Key, StringComparer.Ordinal))
                foreach (var (local, summary, node) in await service.AllRoomsAsync())
                    list.Add((Jid.Create(local, domain), summary, true, node));
            return list;
        }
        var store = new MucStore(target.Storage);
        foreach (var domain in MucDomains())
            foreach (var (local, summary) in (await store.LoadDirectoryAsync(domain)).OrderBy(r => r.Key, StringComparer.Ordinal))
                list.Add((Jid.Create(local, domain), summary, false, null));
        return list;
    }

    private IEnumerable<string> MucDomains() =>
        target.Options.Muc.Enabled ? Domains.All.Select(d => target.Options.Muc.Subdomain + "." + d) : [];

    private async Task<int> RoomDestroyAsync(string text, string? reason)
    {
        Jid room;
        try { room = Jid.Parse(text); }
        catch (FormatException ex) { return Fail($"{text} is not a valid JID: {ex.Message}"); }
        if (room.Local is null || room.Resource is not null)
            return Fail($"{text} is not a room JID like room@{MucDomains().FirstOrDefault() ?? "conference.example.org"}");
        if (!MucDomains().Contains(room.Domain))
            return Fail($"{room.Domain} is not a chat room service of this server ({string.Join(", ", MucDomains())})");
        if (target.Live is { } live)
        {
            // The room's own worker does it, as an owner's destroy (XEP-0045 §10.9): occupants are told, stores emptied.
            if (!await live.Muc.Services[room.Domain].DestroyAsync(room.Local, reason)) return Fail($"{room} does not exist");
        }
        else
        {
            var store = new MucStore(target.Storage);
            if (!(await store.LoadDirectoryAsync(room.Domain)).ContainsKey(room.Local)) return Fail($"{room} does not exist");
            await store.DeleteRoomAsync(room.ToString());
            await store.DeleteSummaryAsync(room.Domain, room.Local);
        }
        output.WriteLine($"destroyed {room}");
        return 0;
    }

    private async Task<int> StatsAsync()
    {
        var accounts = await target.Storage.Accounts.CountAsync();
        var rooms = (await RoomsAsync()).Count;
        if (target.Live is not { } live)
        {
            output.WriteLine("server not running (accounts and stored rooms read from the data folder)");
            output.WriteLine($"accounts {accounts}");
            output.WriteLine($"rooms {rooms}");
            return 0;
        }
        var uptime = live.Time.GetUtcNow() - live.StartedAt;
        output.WriteLine($"connections {live.Connections.Count}");
        output.WriteLine($"sessions {live.Sessions.Count}");
        output.WriteLine($"accounts {accounts}");
        output.WriteLine($"rooms {rooms}");
        output.WriteLine($"uptime {(long)uptime.TotalSeconds} s ({uptime:d\\.hh\\:mm\\:ss})");
        return 0;
    }

    /// A consistent copy of the data folder while the server runs: the storage copies itself (IStorageBackup), the rest
    /// of the folder (uploaded files, the upload key) is written once and never changed, so it is copied as it is.
    private async Task<int> BackupAsync(string dir)
    {
        if (!Path.IsPathFullyQualified(dir)) return Fail($"backup: {dir} is not an absolute path");
        var data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target.Options.DataDir));
        var copy = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        if (copy == data || copy.StartsWith(data + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            return Fail($"the backup folder {copy} is inside the data folder {data}");
        if (Directory.Exists(copy) && Directory.EnumerateFileSystemEntries(copy).Any()) return Fail($"{copy} is not empty: give a new or empty folder");
        if (target.Storage is not IStorageBackup backup) return Fail("this storage provider cannot copy itself: use the database's own backup tools");
        var clock = Stopwatch.StartNew();
        try
        {
            BackupFiles.CreateDirectory(copy);
            await backup.BackupAsync(copy);
            var others = CopyRest(data, copy, top: true);
            // Written last: xmppd restore takes only a folder that has it, so a copy cut short is never restored.
            BackupFiles.MarkComplete(copy, data);
            output.WriteLine($"backed up {data} to {copy} in {clock.Elapsed.TotalSeconds:0.0} s (the database, the archives and {others} other files); "
                + $"a server started with --data-dir {copy} opens it");
            return 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Fail($"the backup to {copy} failed and is incomplete: {ex.Message}");
        }
    }

    /// Files that belong to the process holding the folder, or that the storage has copied already.
    private static readonly HashSet<string> NotCopied = new(StringComparer.Ordinal)
    {
        Xmpp.Server.Hosting.DataDirLock.LockFileName, Xmpp.Server.Hosting.DataDirLock.PidFileName, AdminSocket.FileName,
        Xmpp.Storage.LiteDb.LiteDbStorage.FileName, "xmpp-log.db", "archive", BackupFiles.CompleteMarker,
    };

    private static int CopyRest(string from, string to, bool top)
    {
        int n = 0;
        foreach (var file in Directory.EnumerateFiles(from))
        {
            if (top && NotCopied.Contains(Path.GetFileName(file))) continue;
            try { BackupFiles.Copy(file, Path.Combine(to, Path.GetFileName(file))); n++; }
            catch (FileNotFoundException) { } // deleted meanwhile (an expired upload)
        }
        foreach (var folder in Directory.EnumerateDirectories(from))
        {
            if (top && NotCopied.Contains(Path.GetFileName(folder))) continue;
            var target = Path.Combine(to, Path.GetFileName(folder));
            BackupFiles.CreateDirectory(target);
            n += CopyRest(folder, target, top: false);
        }
        return n;
    }

    private bool TryUser(string text, out string user, out string problem)
    {
        user = "";
        problem = "";
        try
        {
            var jid = text.Contains('@') ? Jid.Parse(text) : Jid.Create(text, Domains.Default);
            if (jid.Local is null || jid.Resource is not null) { problem = $"{text} is not a bare JID like alice@{Domains.Default}"; return false; }
            if (!Domains.Contains(jid.Domain)) { problem = $"{jid.Domain} is not a domain this server serves ({string.Join(", ", Domains.All)})"; return false; }
            user = jid.Local;
            return true;
        }
        catch (FormatException ex)
        {
            problem = $"{text} is not a valid JID: {ex.Message}";
            return false;
        }
    }

    private int NotRunning(string command) =>
        Fail($"{command} needs the running server, and it is not running (nothing answers on {AdminSocket.PathFor(target.Options)})");

    private int Fail(string message)
    {
        error.WriteLine("error: " + message);
        return 1;
    }
}
