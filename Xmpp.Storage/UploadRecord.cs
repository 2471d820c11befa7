namespace Xmpp.Storage;

// A completed HTTP upload (XEP-0363): the file's bytes live on disk under Id; this is what is known about them.
public sealed record UploadRecord(
    string Id,
    string Owner,
    string FileName,
    string ContentType,
    long Size,
    DateTimeOffset Created);
