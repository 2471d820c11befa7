using Xmpp.Storage;

namespace Xmpp.Tests.Storage;

// What every IRosterStore must do.
public abstract class RosterStoreContract : StorageContract
{
    internal static RosterItem Contact(string jid, Subscription subscription = Subscription.Both) =>
        new(jid, jid.Split('@')[0], ["Friends"], subscription, AskOut: false, PendingIn: false, PreApproved: false, InRoster: true);

    private static long Number(string version) => long.Parse(version, System.Globalization.CultureInfo.InvariantCulture);

    [Test]
    public async Task An_untouched_roster_is_empty_at_version_zero()
    {
        var roster = await Storage.Rosters.GetAsync("juliet");

        Assert.That(roster.Version, Is.EqualTo("0"));
        Assert.That(roster.Items, Is.Empty);
    }

    [Test]
    public async Task Set_item_is_returned_with_every_field()
    {
        var item = new RosterItem("romeo@montague.lit", "Romeo", ["Friends", "Lovers"], Subscription.To,
            AskOut: true, PendingIn: true, PreApproved: true, InRoster: true, PendingInStatus: "let me in");

        await Storage.Rosters.SetItemAsync("juliet", item);

        var stored = await Storage.Rosters.GetItemAsync("juliet", "romeo@montague.lit");
        Assert.That(stored, Is.Not.Null);
        Assert.That(stored! with { Groups = [] }, Is.EqualTo(item with { Groups = [] }));
        Assert.That(stored.Groups, Is.EqualTo(new[] { "Friends", "Lovers" }));
    }

    [Test]
    public async Task Item_without_name_or_groups_round_trips()
    {
        var item = new RosterItem("nurse@capulet.lit", null, [], Subscription.None, false, false, false, true);

        await Storage.Rosters.SetItemAsync("juliet", item);

        var stored = await Storage.Rosters.GetItemAsync("juliet", "nurse@capulet.lit");
        Assert.That(stored!.Name, Is.Null);
        Assert.That(stored.Groups, Is.Empty);
        Assert.That(stored.PendingInStatus, Is.Null);
    }

    [Test]
    public async Task Get_item_of_an_unknown_contact_returns_null()
    {
        await Storage.Rosters.SetItemAsync("juliet", Contact("romeo@montague.lit"));

        Assert.That(await Storage.Rosters.GetItemAsync("juliet", "tybalt@capulet.lit"), Is.Null);
        Assert.That(await Storage.Rosters.GetItemAsync("romeo", "romeo@montague.lit"), Is.Null);
    }

    [Test]
    public async Task Every_change_returns_a_higher_version_than_the_last()
    {
        var versions = new List<long>();
        for (var i = 0; i < 12; i++)
            versions.Add(Number(await Storage.Rosters.SetItemAsync("juliet", Contact($"c{i}@lit"))));
        versions.Add(Number((await Storage.Rosters.RemoveItemAsync("juliet", "c3@lit"))!));
        versions.Add(Number(await Storage.Rosters.SetItemAsync("juliet", Contact("c0@lit", Subscription.From))));

        Assert.That(versions, Is.Ordered.Ascending.And.Unique);
        Assert.That(versions[0], Is.GreaterThan(0));
        Assert.That((await Storage.Rosters.GetAsync("juliet")).Version, Is.EqualTo(versions[^1].ToString()));
    }

    [Test]
    public async Task Set_item_replaces_the_existing_item_for_that_jid()
    {
        await Storage.Rosters.SetItemAsync("juliet", Contact("romeo@montague.lit", Subscription.None));
        await Storage.Rosters.SetItemAsync("juliet", Contact("romeo@montague.lit", Subscription.Both) with { Name = "R" });

        var roster = await Storage.Rosters.GetAsync("juliet");

        Assert.That(roster.Items, Has.Count.EqualTo(1));
        Assert.That(roster.Items[0].Subscription, Is.EqualTo(Subscription.Both));
        Assert.That(roster.Items[0].Name, Is.EqualTo("R"));
    }

    [Test]
    public async Task Snapshot_lists_items_in_ordinal_jid_order()
    {
        foreach (var jid in new[] { "romeo@montague.lit", "Benvolio@montague.lit", "nurse@capulet.lit" })
            await Storage.Rosters.SetItemAsync("juliet", Contact(jid));

        var jids = (await Storage.Rosters.GetAsync("juliet")).Items.Select(i => i.Jid);

        Assert.That(jids, Is.EqualTo(new[] { "Benvolio@montague.lit", "nurse@capulet.lit", "romeo@montague.lit" }));
    }

    [Test]
    public async Task Remove_item_returns_a_new_version_and_the_item_is_gone()
    {
        var before = await Storage.Rosters.SetItemAsync("juliet", Contact("romeo@montague.lit"));

        var after = await Storage.Rosters.RemoveItemAsync("juliet", "romeo@montague.lit");

        Assert.That(after, Is.Not.Null);
        Assert.That(Number(after!), Is.GreaterThan(Number(before)));
        Assert.That(await Storage.Rosters.GetItemAsync("juliet", "romeo@montague.lit"), Is.Null);
        Assert.That((await Storage.Rosters.GetAsync("juliet")).Items, Is.Empty);
    }

    [Test]
    public async Task Removing_an_absent_item_returns_null_and_keeps_the_version()
    {
        var version = await Storage.Rosters.SetItemAsync("juliet", Contact("romeo@montague.lit"));

        Assert.That(await Storage.Rosters.RemoveItemAsync("juliet", "tybalt@capulet.lit"), Is.Null);
        Assert.That((await Storage.Rosters.GetAsync("juliet")).Version, Is.EqualTo(version));
    }

    [Test]
    public async Task Pending_only_records_are_kept_and_marked_not_in_roster()
    {
        // RFC 6121 §3.1.3: an inbound request is remembered even though the contact is not in the roster yet.
        var pending = new RosterItem("tybalt@capulet.lit", null, [], Subscription.None,
            AskOut: false, PendingIn: true, PreApproved: false, InRoster: false, PendingInStatus: "hello");
        var preApproved = new RosterItem("paris@verona.lit", null, [], Subscription.None,
            AskOut: false, PendingIn: false, PreApproved: true, InRoster: false);
        await Storage.Rosters.SetItemAsync("juliet", pending);
        await Storage.Rosters.SetItemAsync("juliet", preApproved);
        await Storage.Rosters.SetItemAsync("juliet", Contact("romeo@montague.lit"));

        var roster = await Storage.Rosters.GetAsync("juliet");

        Assert.That(roster.Items, Has.Count.EqualTo(3));
        Assert.That(roster.Items.Where(i => !i.InRoster).Select(i => i.Jid),
            Is.EquivalentTo(new[] { "tybalt@capulet.lit", "paris@verona.lit" }));
        Assert.That((await Storage.Rosters.GetItemAsync("juliet", "tybalt@capulet.lit"))!.PendingInStatus, Is.EqualTo("hello"));
    }

    [Test]
    public async Task Rosters_of_users_sharing_a_prefix_stay_separate()
    {
        await Storage.Rosters.SetItemAsync("jul", Contact("a@lit"));
        await Storage.Rosters.SetItemAsync("juliet", Contact("b@lit"));
        await Storage.Rosters.SetItemAsync("julietta", Contact("c@lit"));

        Assert.That((await Storage.Rosters.GetAsync("juliet")).Items.Select(i => i.Jid), Is.EqualTo(new[] { "b@lit" }));
        Assert.That((await Storage.Rosters.GetAsync("jul")).Version, Is.EqualTo("1"));
    }

    [Test]
    public async Task Delete_all_empties_the_roster_without_lowering_the_version()
    {
        await Storage.Rosters.SetItemAsync("juliet", Contact("romeo@montague.lit"));
        var version = await Storage.Rosters.SetItemAsync("juliet", Contact("nurse@capulet.lit"));
        await Storage.Rosters.SetItemAsync("romeo", Contact("juliet@capulet.lit"));

        await Storage.Rosters.DeleteAllAsync("juliet");

        var roster = await Storage.Rosters.GetAsync("juliet");
        Assert.That(roster.Items, Is.Empty);
        Assert.That(Number(roster.Version), Is.GreaterThan(Number(version)));
        Assert.That(Number(await Storage.Rosters.SetItemAsync("juliet", Contact("a@lit"))), Is.GreaterThan(Number(roster.Version)));
        Assert.That((await Storage.Rosters.GetAsync("romeo")).Items, Has.Count.EqualTo(1));
    }
}
