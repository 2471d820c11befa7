using Xmpp.Tests.Support;

namespace Xmpp.Tests.Server;

/// The admin commands of the single binary, run as a process like an operator would.
[TestFixture]
public sealed class AdminCliTests
{
    private string _dir = null!;

    [SetUp]
    public void MakeDir()
    {
        _dir = Path.Combine(Path.GetTempPath(), "xmppd-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private Task<(int ExitCode, string Output)> Run(params string[] args) =>
        ServerProcess.RunAsync(_dir, [.. args, "--data-dir", Path.Combine(_dir, "data"), "--cert-dir", Path.Combine(_dir, "certs")]);

    [Test]
    public async Task User_add_list_passwd_and_del_work_and_report_mistakes()
    {
        var add = await Run("user", "add", "alice@localhost", "first-password");
        Assert.That(add.ExitCode, Is.EqualTo(0), add.Output);
        Assert.That(add.Output, Does.Contain("created alice@localhost"));
        var again = await Run("user", "add", "alice", "whatever-pass");
        Assert.That(again.ExitCode, Is.EqualTo(1));
        Assert.That(again.Output, Does.Contain("exists already"));
        Assert.That((await Run("user", "add", "bob", "bob-password")).ExitCode, Is.EqualTo(0));
        var list = await Run("user", "list");
        Assert.That(list.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Is.EqualTo(new[] { "alice@localhost", "bob@localhost" }));
        Assert.That((await Run("user", "passwd", "alice@localhost", "second-password")).ExitCode, Is.EqualTo(0));
        var wrongDomain = await Run("user", "add", "carol@example.org", "carol-password");
        Assert.That(wrongDomain.ExitCode, Is.EqualTo(1));
        Assert.That(wrongDomain.Output, Does.Contain("not a domain this server serves"));
        var del = await Run("user", "del", "bob@localhost");
        Assert.That(del.ExitCode, Is.EqualTo(0), del.Output);
        Assert.That((await Run("user", "list")).Output.Trim(), Is.EqualTo("alice@localhost"));
        Assert.That((await Run("user", "del", "bob@localhost")).ExitCode, Is.EqualTo(1));
    }

    [Test]
    public async Task Passwords_are_stored_only_as_scram_keys()
    {
        Assert.That((await Run("user", "add", "alice", "a-very-distinctive-secret")).ExitCode, Is.EqualTo(0));
        var db = Path.Combine(_dir, "data", "xmpp.db");
        var bytes = File.ReadAllBytes(db);
        var text = System.Text.Encoding.UTF8.GetString(bytes) + System.Text.Encoding.Unicode.GetString(bytes);
        Assert.That(text, Does.Not.Contain("a-very-distinctive-secret"));
    }

    [Test]
    public async Task Cert_generate_writes_a_lets_encrypt_layout()
    {
        var r = await Run("cert", "generate", "chat.example");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.Output);
        Assert.That(File.Exists(Path.Combine(_dir, "certs", "chat.example", "fullchain.pem")));
        Assert.That(File.Exists(Path.Combine(_dir, "certs", "chat.example", "privkey.pem")));
    }

    [Test]
    public async Task Check_explains_each_problem_in_one_line()
    {
        var bad = await ServerProcess.RunAsync(_dir, "check", "--c2s-port", "99999", "--c2s-tls-port", "5223", "--domain", "bad domain!",
            "--data-dir", Path.Combine(_dir, "data"), "--cert-dir", Path.Combine(_dir, "certs"));
        Assert.That(bad.ExitCode, Is.EqualTo(1));
        var problems = bad.Output.Split('\n').Where(l => l.StartsWith("problem: ")).ToList();
        Assert.That(problems, Has.Some.Contains("99999"));
        Assert.That(problems, Has.Some.Contains("bad domain!"));
    }

    [Test]
    public async Task Check_reports_a_missing_certificate_and_then_passes_once_generated()
    {
        int p1 = TestServer.FreePort(), p2 = TestServer.FreePort();
        // check probes the s2s port too; 5269 may be taken on a shared test machine.
        var s2s = $"--Xmpp:S2s:Port={TestServer.FreePort()}";
        var missing = await ServerProcess.RunAsync(_dir, "check", "--c2s-port", p1.ToString(), "--c2s-tls-port", p2.ToString(), "--http-port", "0",
            "--data-dir", Path.Combine(_dir, "data"), "--cert-dir", Path.Combine(_dir, "certs"), s2s);
        Assert.That(missing.ExitCode, Is.EqualTo(1));
        Assert.That(missing.Output, Does.Contain("problem: certificate:"));
        Assert.That((await Run("cert", "generate", "localhost")).ExitCode, Is.EqualTo(0));
        var ok = await ServerProcess.RunAsync(_dir, "check", "--c2s-port", p1.ToString(), "--c2s-tls-port", p2.ToString(), "--http-port", "0",
            "--data-dir", Path.Combine(_dir, "data"), "--cert-dir", Path.Combine(_dir, "certs"), s2s);
        Assert.That(ok.ExitCode, Is.EqualTo(0), ok.Output);
        Assert.That(ok.Output, Does.Contain("ok:"));
    }

    [Test]
    public async Task Unknown_option_is_reported_not_ignored()
    {
        var r = await ServerProcess.RunAsync(_dir, "run", "--c2s-prot", "5222");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Output, Does.Contain("Unknown option --c2s-prot"));
    }
}
