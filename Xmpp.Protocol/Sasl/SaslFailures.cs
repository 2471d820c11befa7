namespace Xmpp.Protocol.Sasl;

/// <summary>RFC 6120 §6.5 SASL failure conditions, as the names of the child of <c>&lt;failure/&gt;</c>.</summary>
public static class SaslFailures
{
    public const string Aborted = "aborted";
    public const string AccountDisabled = "account-disabled";
    public const string CredentialsExpired = "credentials-expired";
    public const string EncryptionRequired = "encryption-required";
    public const string IncorrectEncoding = "incorrect-encoding";
    public const string InvalidAuthzid = "invalid-authzid";
    public const string InvalidMechanism = "invalid-mechanism";
    public const string MalformedRequest = "malformed-request";
    public const string MechanismTooWeak = "mechanism-too-weak";
    public const string NotAuthorized = "not-authorized";
    public const string TemporaryAuthFailure = "temporary-auth-failure";
}
