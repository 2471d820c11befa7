namespace Xmpp.Server.Modules.AdHoc;

/// The server's commands, contributed by modules while they register (XEP-0133 administration, announcements,
/// invites) and served by AdHocModule. Frozen with the module registry: nothing is added once the server runs.
public sealed class AdHocCommands
{
    private readonly Dictionary<string, AdHocCommand> _byNode = new(StringComparer.Ordinal);
    private readonly List<AdHocCommand> _ordered = [];

    public void Add(AdHocCommand command)
    {
        if (!_byNode.TryAdd(command.Node, command))
            throw new InvalidOperationException($"Two modules declare the ad-hoc command {command.Node}.");
        _ordered.Add(command);
    }

    /// A command whose form needs no I/O to build.
    public void Add(string node, string name, CommandAccess access, Func<AdHocRequest, Xmpp.Protocol.Payloads.DataForm>? form,
        Func<AdHocRequest, Xmpp.Protocol.Payloads.DataForm?, ValueTask<AdHocResult>> run) =>
        Add(new AdHocCommand(node, name, access, form is null ? null : r => ValueTask.FromResult(form(r)), run));

    public AdHocCommand? Find(string node) => _byNode.GetValueOrDefault(node);

    /// In the order they were declared, which is the order clients list them.
    public IReadOnlyList<AdHocCommand> All => _ordered;
}
