// XEP-0157: Contact Addresses for XMPP Services.
using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Hosting;

namespace Xmpp.Server.Modules.Disco;

/// Announces where to report abuse or reach the admins: an XEP-0128 form of type serverinfo in the server's
/// disco#info, built once from Xmpp:ContactAddresses (XEP-0157 §2; the XEP-0115 hash in stream features covers it).
[Xep("XEP-0157", "1.1.1")]
public sealed class ContactAddressesModule(XmppServerOptionsAccessor options) : IXmppModule
{
    private Element? _form;
    private bool _built;

    public void Register(IModuleBuilder module) => module.ServerInfoForm(Form);

    private Element? Form()
    {
        if (_built) return _form;
        var fields = options.Value.ContactAddresses.Fields().Where(f => f.Addresses.Count > 0).ToList();
        if (fields.Count > 0)
        {
            var form = new DataForm("result", Ns.ServerInfo);
            foreach (var (field, addresses) in fields) form.AddField(field, "list-multi", [.. addresses]);
            _form = form.Element;
        }
        _built = true;
        return _form;
    }
}
