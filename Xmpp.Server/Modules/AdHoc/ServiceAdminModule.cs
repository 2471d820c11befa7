// XEP-0133: Service Administration, the commands Gajim's and Psi's admin menus run, for the JIDs in Xmpp:Admins.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Auth;
using Xmpp.Server.Modules.Roster;
using Xmpp.Server.Sessions;

namespace Xmpp.Server.Modules.AdHoc;

/// Account and session administration through XEP-0050 commands (each in XEP-0133's FORM_TYPE and field names).
/// An account named in a form must be one of the served domain's; other JIDs get an error note, and the command
/// does what it can for the rest.
[Xep("XEP-0133", "1.3.1", "add, delete, disable and re-enable users, change passwords, end sessions, rosters, last login, user counts and lists")]
public sealed class ServiceAdminModule(AdHocCommands commands, AccountService accounts, ISessionDirectory directory, IRosterService rosters,
    SessionEvents sessionEvents)
    : IXmppModule
{
    public const string Prefix = Ns.Admin + "#";

    public void Register(IModuleBuilder module)
    {
        Add("add-user", "Add a User", _ => Form("Adding a user",
                Field("accountjid", "jid-single", "The Jabber ID for the account to be added", required: true),
                Field("password", "text-private", "The password for this account", required: true),
                Field("password-verify", "text-private", "Retype password", required: true)),
            AddUserAsync);
        Add("delete-user", "Delete a User", _ => Form("Deleting users",
                Field("accountjids", "jid-multi", "The Jabber ID(s) to delete", required: true)),
            (r, f) => ForEachAccountAsync(r, f!, "deleted", DeleteAsync));
        Add("disable-user", "Disable a User", _ => Form("Disabling users",
                Field("accountjids", "jid-multi", "The Jabber ID(s) to disable", required: true)),
            (r, f) => ForEachAccountAsync(r, f!, "disabled", DisableAsync));
        Add("reenable-user", "Re-Enable a User", _ => Form("Re-enabling users",
                Field("accountjids", "jid-multi", "The Jabber ID(s) to re-enable", required: true)),
            (r, f) => ForEachAccountAsync(r, f!, "enabled again", (user, _) => accounts.EnableAsync(user)));
        Add("end-user-session", "End User Session", _ => Form("Ending sessions",
                Field("accountjids", "jid-multi", "The Jabber ID(s) whose sessions end (a full JID ends one session)", required: true)),
            EndSessionsAsync);
        Add("change-user-password", "Change User Password", _ => Form("Changing a password",
                Field("accountjid", "jid-single", "The Jabber ID whose password changes", required: true),
                Field("password", "text-private", "The new password", required: true)),
            ChangePasswordAsync);
        Add("get-user-roster", "Get User Roster", _ => Form("Reading a roster",
                Field("accountjids", "jid-single", "The Jabber ID whose roster to read", required: true)),
            GetRosterAsync);
        Add("get-user-lastlogin", "Get User Last Login Time", _ => Form("Last login",
                Field("accountjids", "jid-single", "The Jabber ID to look up", required: true)),
            LastLoginAsync);
        Add("get-registered-users-num", "Get Number of Registered Users", null, async (r, _) =>
            new AdHocResult(null, Form: Result(("registeredusersnum", "text-single", "The number of registered users",
                [(await accounts.CountAsync()).ToString(CultureInfo.InvariantCulture)]))));
        Add("get-online-users-num", "Get Number of Online Users", null, (r, _) =>
            ValueTask.FromResult(new AdHocResult(null, Form: Result(("onlineusersnum", "text-single", "The number of online users",
                [OnlineAccounts(r.Domain).Count().ToString(CultureInfo.InvariantCulture)])))));
        Add("get-online-users-list", "Get List of Online Users", null, (r, _) =>
            ValueTask.FromResult(new AdHocResult(null, Form: Result(("onlineuserjids", "jid-multi", "The list of all online users",
                [.. OnlineAccounts(r.Domain)])))));
    }

    private void Add(string name, string label, Func<AdHocRequest, DataForm>? form, Func<AdHocRequest, DataForm?, ValueTask<AdHocResult>> run) =>
        commands.Add(Prefix + name, label, CommandAccess.Admins, form, run);

    internal static DataForm Form(string title, params Element[] fields)
    {
        var form = new DataForm("form", Ns.Admin);
        form.Element.Add(new Element("title", Ns.DataForms).SetText(title));
        foreach (var f in fields) form.AddField(f);
        return form;
    }

    internal static Element Field(string var, string type, string label, bool required = false)
    {
        var field = DataForm.Field(var, type).SetAttr("label", label);
        if (required) field.Add(new Element("required", Ns.DataForms));
        return field;
    }

    private static DataForm Result(params (string Var, string Type, string Label, string[] Values)[] fields)
    {
        var form = new DataForm("result", Ns.Admin);
        foreach (var (var, type, label, values) in fields) form.AddField(var, type, label, values);
        return form;
    }

    /// The bare JIDs of the domain's accounts with at least one session, once each, sorted.
    private IEnumerable<string> OnlineAccounts(string domain) =>
        directory.All().Where(e => e.Jid.Domain == domain).Select(e => e.Jid.Bare.ToString()).Distinct().Order(StringComparer.Ordinal);

    /// A JID of the served domain with a local part, or null.
    private static Jid? LocalAccount(AdHocRequest r, string? value, bool allowFull = false) =>
        value is not null && Jid.TryParse(value.Trim(), out var jid) && jid.Local is not null && jid.Domain == r.Domain
            && (allowFull || jid.Resource is null) ? jid : null;

    private async ValueTask<AdHocResult> AddUserAsync(AdHocRequest r, DataForm? f)
    {
        var jid = LocalAccount(r, f!.Value("accountjid"));
        var password = f.Value("password");
        if (jid is null) return AdHocResult.Failed($"The account must be a JID of {r.Domain} without a resource");
        if (string.IsNullOrEmpty(password)) return AdHocResult.Failed("A password is required");
        if (f.Has("password-verify") && f.Value("password-verify") != password) return AdHocResult.Failed("The passwords do not match");
        return await accounts.CreateAsync(jid.Local!, password)
            ? AdHocResult.Done($"{jid} was added")
            : AdHocResult.Failed($"{jid} exists already");
    }

    private async ValueTask<AdHocResult> ChangePasswordAsync(AdHocRequest r, DataForm? f)
    {
        var jid = LocalAccount(r, f!.Value("accountjid"));
        var password = f.Value("password");
        if (jid is null) return AdHocResult.Failed($"The account must be a JID of {r.Domain} without a resource");
        if (string.IsNullOrEmpty(password)) return AdHocResult.Failed("A password is required");
        return await accounts.ChangePasswordAsync(jid.Local!, password)
            ? AdHocResult.Done($"The password of {jid} was changed")
            : AdHocResult.Failed($"{jid} does not exist");
    }

    /// Runs an action for every account in 'accountjids' and reports each outcome in one note.
    private static async ValueTask<AdHocResult> ForEachAccountAsync(AdHocRequest r, DataForm f, string done,
        Func<string, AdHocRequest, ValueTask<bool>> action)
    {
        var values = f.Values("accountjids");
        if (values.Count == 0) return AdHocResult.Failed("No account was named");
        var ok = new List<string>();
        var failed = new List<string>();
        foreach (var value in values)
        {
            var jid = LocalAccount(r, value);
            if (jid is not null && await action(jid.Local!, r)) ok.Add(jid.ToString());
            else failed.Add(value);
        }
        var note = ok.Count > 0 ? $"{string.Join(", ", ok)} {done}" : "";
        if (failed.Count > 0) note += (note.Length > 0 ? "; " : "") + $"not found on {r.Domain}: {string.Join(", ", failed)}";
        return new AdHocResult(note, failed.Count > 0 ? "error" : "info");
    }

    private async ValueTask<bool> DeleteAsync(string user, AdHocRequest r)
    {
        if (!await accounts.DeleteAsync(user)) return false;
        EndSessions(Jid.Create(user, r.Domain), StreamErrors.NotAuthorized, "The account has been removed");
        return true;
    }

    private async ValueTask<bool> DisableAsync(string user, AdHocRequest r)
    {
        if (!await accounts.DisableAsync(user, $"disabled by {r.From.Bare}")) return false;
        EndSessions(Jid.Create(user, r.Domain), StreamErrors.NotAuthorized, "The account has been disabled");
        return true;
    }

    private ValueTask<AdHocResult> EndSessionsAsync(AdHocRequest r, DataForm? f)
    {
        var values = f!.Values("accountjids");
        if (values.Count == 0) return ValueTask.FromResult(AdHocResult.Failed("No account was named"));
        int ended = 0;
        var unknown = new List<string>();
        foreach (var value in values)
        {
            if (LocalAccount(r, value, allowFull: true) is { } jid) ended += EndSessions(jid, StreamErrors.PolicyViolation, "Your session was ended by an administrator");
            else unknown.Add(value);
        }
        var note = $"{ended} session(s) ended";
        if (unknown.Count > 0) note += $"; not accounts of {r.Domain}: {string.Join(", ", unknown)}";
        return ValueTask.FromResult(new AdHocResult(note, unknown.Count > 0 ? "error" : "info"));
    }

    /// Closes one session (a full JID) or every session of an account (a bare JID); returns how many.
    private int EndSessions(Jid jid, string condition, string text)
    {
        var targets = jid.Resource is null ? directory.Get(jid.Bare).Entries.ToList() : directory.Find(jid) is { } one ? [one] : [];
        foreach (var e in targets) e.Sink.Close(condition, text);
        return targets.Count;
    }

    private async ValueTask<AdHocResult> GetRosterAsync(AdHocRequest r, DataForm? f)
    {
        var jid = LocalAccount(r, f!.Value("accountjids"));
        if (jid is null || !await accounts.ExistsAsync(jid.Local!)) return AdHocResult.Failed($"No such account on {r.Domain}");
        // XEP-0133 §4.8: the roster as a jabber:iq:roster query inside the result form.
        var query = new Element("query", Ns.Roster);
        foreach (var item in await rosters.ItemsAsync(jid))
        {
            if (!item.InRoster) continue;
            var e = new Element("item", Ns.Roster).SetAttr("jid", item.Jid).SetAttr("name", item.Name)
                .SetAttr("subscription", item.Subscription.ToString().ToLowerInvariant());
            foreach (var g in item.Groups) e.Add(new Element("group", Ns.Roster).SetText(g));
            query.Add(e);
        }
        var form = Result(("accountjids", "jid-single", "The account", [jid.ToString()]));
        form.Element.Add(query);
        return new AdHocResult(null, Form: form);
    }

    private async ValueTask<AdHocResult> LastLoginAsync(AdHocRequest r, DataForm? f)
    {
        var jid = LocalAccount(r, f!.Value("accountjids"));
        if (jid is null || await accounts.FindAsync(jid.Local!) is null) return AdHocResult.Failed($"No such account on {r.Domain}");
        // Online: the start of its oldest current session. Offline: the end of its last one, the last moment it was
        // logged in, since the server keeps no login time beyond the session itself.
        var sessions = directory.Get(jid.Bare).Entries.Select(e => e.Sink).OfType<ClientSession>().ToList();
        // A session that has just left the directory records its logout in its session-closed handlers: wait for them,
        // then read the account, or the answer would be "never" for an account that logged out a moment ago.
        if (sessions.Count == 0) await sessionEvents.EndingAsync(jid.Bare);
        var account = await accounts.FindAsync(jid.Local!);
        if (account is null) return AdHocResult.Failed($"No such account on {r.Domain}");
        string value = sessions.Count > 0
            ? DateTimeProfile.Format(sessions.Min(s => s.BoundAt))
            : account.LastLogout is { } last ? DateTimeProfile.Format(last) : "never";
        return new AdHocResult(sessions.Count > 0 ? "online now" : null,
            Form: Result(("accountjids", "jid-single", "The account", [jid.ToString()]), ("lastlogin", "text-single", "Last login", [value])));
    }
}
