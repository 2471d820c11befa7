// XEP-0198: Stream Management. The protocol lives in Streams/StreamManagement; this declares its stream feature
// and the nonzas it answers on an established stream.
using System.Globalization;
using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Streams.StreamManagement;

namespace Xmpp.Server.Modules.StreamManagement;

[Xep("XEP-0198", "1.6.3", "acks, resumption; unacknowledged messages go to another resource or the offline spool")]
public sealed class StreamManagementModule(StreamManagementService service) : IXmppModule
{
    public void Register(IModuleBuilder module)
    {
        // XEP-0198 §2: offered after authentication, next to resource binding; a stream feature only, not in disco.
        // Not once it is on: the features after a SASL2 <success/> (XEP-0388 §2.6.1) list what is still applicable,
        // and §3 allows one enable per session, §5 a resume only in place of binding.
        // (xmpp.js 0.14 answers an <sm/> there with <resume/>, then <enable/>, and drops its state when both fail.)
        module.StreamFeature(StreamFeatureStage.PostAuth, c => c.IsStreamManaged ? null : new Element("sm", Ns.StreamManagement));
        module.StreamElement("enable", Ns.StreamManagement, (session, e) =>
        {
            service.HandleEnable(session, e);
            return ValueTask.CompletedTask;
        });
        // XEP-0386 §3.2: <enable/> inside a Bind 2 request; the <enabled/> (or <failed/>) answer goes into <bound/>, and
        // counting starts before the session is reachable, so every stanza after <success/> is counted.
        module.Bind2Inline(Ns.StreamManagement, (session, request) =>
        {
            if (request.Name != "enable")
                return ValueTask.FromResult<Element?>(StreamManagementService.Failed(StanzaErrors.UnexpectedRequest, null));
            var resume = request.Attr("resume") is "true" or "1";
            int max = int.TryParse(request.Attr("max"), NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : 0;
            return ValueTask.FromResult<Element?>(service.EnableOnBoundSession(session, resume, max));
        });
        module.StreamElement("r", Ns.StreamManagement, (session, _) => service.HandleRequestAsync(session));
        module.StreamElement("a", Ns.StreamManagement, (session, e) =>
        {
            service.HandleAck(session, e);
            return ValueTask.CompletedTask;
        });
        module.StreamElement("resume", Ns.StreamManagement, (session, _) =>
        {
            service.HandleResumeAfterBind(session);
            return ValueTask.CompletedTask;
        });
    }
}
