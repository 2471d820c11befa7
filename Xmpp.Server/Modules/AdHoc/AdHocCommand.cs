using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;

namespace Xmpp.Server.Modules.AdHoc;

/// One XEP-0050 command of the server: a node, a name, who may run it, and its one stage. A command with a form asks
/// for it first (status executing) and runs on the submitted form; one without runs at once.
public sealed record AdHocCommand(
    string Node,
    string Name,
    CommandAccess Access,
    Func<AdHocRequest, ValueTask<DataForm>>? Form,
    Func<AdHocRequest, DataForm?, ValueTask<AdHocResult>> Run);

public enum CommandAccess { LocalUsers, Admins }

/// Who runs a command, at which served domain.
public sealed record AdHocRequest(Jid From, string Domain);

/// A completed command: a note to show (XEP-0050 §4.5: info, warn or error) and an optional result form.
public sealed record AdHocResult(string? Note, string NoteType = "info", DataForm? Form = null)
{
    public static AdHocResult Done(string note) => new(note);
    public static AdHocResult Failed(string note) => new(note, "error");
}
