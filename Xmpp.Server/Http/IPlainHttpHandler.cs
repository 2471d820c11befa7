namespace Xmpp.Server.Http;

/// A handler also served without TLS, on the plain-HTTP listener that exists only for ACME http-01 challenges
/// (Xmpp:Acme:Http01Port). Every other handler is HTTPS-only.
public interface IPlainHttpHandler : IHttpHandler;
