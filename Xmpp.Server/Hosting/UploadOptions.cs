namespace Xmpp.Server.Hosting;

/// XEP-0363 HTTP File Upload, served on the HTTPS port (Xmpp:HttpPort; off when that is 0).
public sealed class UploadOptions
{
    public bool Enabled { get; set; } = true;

    /// The service lives at SUBDOMAIN.DOMAIN for each served domain.
    public string Subdomain { get; set; } = "upload";

    /// Base of the PUT and GET URLs as clients reach the HTTPS endpoint, e.g. https://upload.example.org behind a
    /// reverse proxy; empty means https://DOMAIN:HttpPort.
    public string PublicUrl { get; set; } = "";

    /// Folder for the files; empty means DataDir/uploads.
    public string Directory { get; set; } = "";

    /// Largest image, audio or video file in bytes.
    public long MaxMediaBytes { get; set; } = 16 * 1024 * 1024;

    /// Largest file of any other type (documents, archives) in bytes.
    public long MaxFileBytes { get; set; } = 100 * 1024 * 1024;

    /// Bytes one account may keep stored; 0 = unlimited.
    public long QuotaBytesPerAccount { get; set; } = 1024L * 1024 * 1024;

    /// Seconds a PUT URL stays valid after the slot was handed out (XEP-0363 §7 recommends about 60).
    public int SlotLifetimeSeconds { get; set; } = 300;

    /// Days a file is kept after its upload; 0 = forever.
    public int RetentionDays { get; set; } = 30;

    /// Seconds between two runs of the cleanup of expired files and abandoned temporary files.
    public int CleanupIntervalSeconds { get; set; } = 3600;
}
