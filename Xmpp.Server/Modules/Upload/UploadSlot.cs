namespace Xmpp.Server.Modules.Upload;

/// What a PUT URL allows: one upload of exactly Size bytes of ContentType ("" when none was announced) by Owner,
/// before Expires (Unix seconds), stored under Id.
public sealed record UploadSlot(string Id, string Owner, string FileName, long Size, string ContentType, long Expires);
