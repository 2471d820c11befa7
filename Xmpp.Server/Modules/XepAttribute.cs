namespace Xmpp.Server.Modules;

/// Names a specification a module implements; the README's support table is generated from these.
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
public sealed class XepAttribute(string spec, string version, string note = "") : Attribute
{
    public string Spec { get; } = spec;
    public string Version { get; } = version;
    public string Note { get; } = note;
}
