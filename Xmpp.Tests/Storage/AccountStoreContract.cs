using Xmpp.Storage;

namespace Xmpp.Tests.Storage;

// What every IAccountStore must do.
public abstract class AccountStoreContract : StorageContract
{
    private static readonly DateTimeOffset Created = new(2024, 5, 1, 12, 30, 15, TimeSpan.Zero);

    internal static Account SampleAccount(string username) => new(
        username,
        [
            new ScramKeys("SHA-1", [1, 2, 3], 4096, [4, 5, 6], [7, 8, 9]),
            new ScramKeys("SHA-256", [10, 11], 8192, Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(), [12]),
        ],
        Created);

    internal static void AssertSameAccount(Account? actual, Account expected)
    {
        Assert.That(actual, Is.Not.Null);
        Assert.That(actual!.Username, Is.EqualTo(expected.Username));
        Assert.That(actual.Created, Is.EqualTo(expected.Created));
        Assert.That(actual.LastLogout, Is.EqualTo(expected.LastLogout));
        Assert.That(actual.LastStatus, Is.EqualTo(expected.LastStatus));
        Assert.That(actual.Credentials, Has.Count.EqualTo(expected.Credentials.Count));
        for (var i = 0; i < expected.Credentials.Count; i++)
        {
            var (a, e) = (actual.Credentials[i], expected.Credentials[i]);
            Assert.That(a.Hash, Is.EqualTo(e.Hash));
            Assert.That(a.Salt, Is.EqualTo(e.Salt));
            Assert.That(a.Iterations, Is.EqualTo(e.Iterations));
            Assert.That(a.StoredKey, Is.EqualTo(e.StoredKey));
            Assert.That(a.ServerKey, Is.EqualTo(e.ServerKey));
        }
    }

    [Test]
    public async Task Created_account_is_found_with_every_field()
    {
        var account = SampleAccount("juliet") with { LastLogout = Created.AddDays(1), LastStatus = "gone to the balcony" };

        Assert.That(await Storage.Accounts.CreateAsync(account), Is.True);

        AssertSameAccount(await Storage.Accounts.FindAsync("juliet"), account);
    }

    [Test]
    public async Task Finding_an_unknown_username_returns_null()
    {
        Assert.That(await Storage.Accounts.FindAsync("nobody"), Is.Null);
    }

    [Test]
    public async Task Creating_an_existing_username_returns_false_and_keeps_the_first_account()
    {
        var first = SampleAccount("romeo");
        await Storage.Accounts.CreateAsync(first);

        var second = first with { Credentials = [new ScramKeys("SHA-512", [9], 1, [9], [9])] };

        Assert.That(await Storage.Accounts.CreateAsync(second), Is.False);
        AssertSameAccount(await Storage.Accounts.FindAsync("romeo"), first);
    }

    [Test]
    public async Task Usernames_differing_only_in_case_are_different_accounts()
    {
        // Storage does no case folding: usernames arrive normalized, and a store must not merge what the caller keeps apart.
        Assert.That(await Storage.Accounts.CreateAsync(SampleAccount("nurse")), Is.True);
        Assert.That(await Storage.Accounts.CreateAsync(SampleAccount("Nurse")), Is.True);

        Assert.That(await Storage.Accounts.CountAsync(), Is.EqualTo(2));
        Assert.That((await Storage.Accounts.FindAsync("Nurse"))!.Username, Is.EqualTo("Nurse"));
    }

    [Test]
    public async Task Update_replaces_the_stored_account()
    {
        await Storage.Accounts.CreateAsync(SampleAccount("juliet"));
        var updated = SampleAccount("juliet") with
        {
            Credentials = [new ScramKeys("SHA-512", [42], 10000, [1], [2])],
            LastLogout = Created.AddHours(3),
            LastStatus = "asleep",
        };

        await Storage.Accounts.UpdateAsync(updated);

        AssertSameAccount(await Storage.Accounts.FindAsync("juliet"), updated);
    }

    [Test]
    public async Task Update_of_a_missing_account_does_not_create_it()
    {
        await Storage.Accounts.UpdateAsync(SampleAccount("ghost"));

        Assert.That(await Storage.Accounts.FindAsync("ghost"), Is.Null);
        Assert.That(await Storage.Accounts.CountAsync(), Is.Zero);
    }

    [Test]
    public async Task Recording_a_logout_sets_its_time_and_status_and_keeps_credentials_changed_before_it()
    {
        await Storage.Accounts.CreateAsync(SampleAccount("juliet"));
        var changed = SampleAccount("juliet") with { Credentials = [new ScramKeys("SHA-512", [42], 10000, [1], [2])] };
        await Storage.Accounts.UpdateAsync(changed);

        await Storage.Accounts.RecordLogoutAsync("juliet", Created.AddHours(5), "gone to Mantua");
        AssertSameAccount(await Storage.Accounts.FindAsync("juliet"), changed with { LastLogout = Created.AddHours(5), LastStatus = "gone to Mantua" });

        await Storage.Accounts.RecordLogoutAsync("juliet", Created.AddHours(6), null);
        AssertSameAccount(await Storage.Accounts.FindAsync("juliet"), changed with { LastLogout = Created.AddHours(6) });
    }

    [Test]
    public async Task Recording_a_logout_of_a_missing_account_does_not_create_it()
    {
        await Storage.Accounts.RecordLogoutAsync("ghost", Created, "boo");

        Assert.That(await Storage.Accounts.FindAsync("ghost"), Is.Null);
        Assert.That(await Storage.Accounts.CountAsync(), Is.Zero);
    }

    [Test]
    public async Task Delete_returns_true_once_and_then_false()
    {
        await Storage.Accounts.CreateAsync(SampleAccount("tybalt"));

        Assert.That(await Storage.Accounts.DeleteAsync("tybalt"), Is.True);
        Assert.That(await Storage.Accounts.DeleteAsync("tybalt"), Is.False);
        Assert.That(await Storage.Accounts.FindAsync("tybalt"), Is.Null);
    }

    [Test]
    public async Task List_returns_every_username_in_ordinal_order_and_count_agrees()
    {
        foreach (var name in new[] { "romeo", "benvolio", "Mercutio", "juliet" })
            await Storage.Accounts.CreateAsync(SampleAccount(name));
        await Storage.Accounts.DeleteAsync("benvolio");

        Assert.That(await Storage.Accounts.ListAsync(), Is.EqualTo(new[] { "Mercutio", "juliet", "romeo" }));
        Assert.That(await Storage.Accounts.CountAsync(), Is.EqualTo(3));
    }

    [Test]
    public async Task Stored_account_does_not_change_when_the_caller_mutates_its_arrays()
    {
        var account = SampleAccount("juliet");
        await Storage.Accounts.CreateAsync(account);

        account.Credentials[0].Salt[0] = 99;

        Assert.That((await Storage.Accounts.FindAsync("juliet"))!.Credentials[0].Salt[0], Is.EqualTo(1));
    }
}
