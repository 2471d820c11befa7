using System.Text;
using Xmpp.Storage;

namespace Xmpp.Tests.Storage;

// What every IKeyValueStore must do.
public abstract class KeyValueStoreContract : StorageContract
{
    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    [Test]
    public async Task Set_value_is_returned_by_get()
    {
        await Storage.KeyValue.SetAsync("juliet", "vcard", Utf8("<vCard xmlns='vcard-temp'/>"));

        Assert.That(await Storage.KeyValue.GetAsync("juliet", "vcard"), Is.EqualTo(Utf8("<vCard xmlns='vcard-temp'/>")));
    }

    [Test]
    public async Task Update_changes_what_is_stored_and_a_null_result_deletes_it()
    {
        var created = await Storage.KeyValue.UpdateAsync("juliet", "list", current => current is null ? Utf8("a") : null);
        Assert.That(created, Is.EqualTo(Utf8("a")));
        await Storage.KeyValue.UpdateAsync("juliet", "list", current => [.. current!, .. Utf8("b")]);
        Assert.That(await Storage.KeyValue.GetAsync("juliet", "list"), Is.EqualTo(Utf8("ab")));
        Assert.That(await Storage.KeyValue.UpdateAsync("juliet", "list", _ => null), Is.Null);
        Assert.That(await Storage.KeyValue.GetAsync("juliet", "list"), Is.Null);
    }

    [Test]
    public async Task Get_of_a_missing_key_returns_null()
    {
        await Storage.KeyValue.SetAsync("juliet", "vcard", Utf8("x"));

        Assert.That(await Storage.KeyValue.GetAsync("juliet", "private"), Is.Null);
        Assert.That(await Storage.KeyValue.GetAsync("romeo", "vcard"), Is.Null);
    }

    [Test]
    public async Task Set_replaces_the_previous_value()
    {
        await Storage.KeyValue.SetAsync("juliet", "vcard", Utf8("old"));
        await Storage.KeyValue.SetAsync("juliet", "vcard", Utf8("new"));

        Assert.That(await Storage.KeyValue.GetAsync("juliet", "vcard"), Is.EqualTo(Utf8("new")));
    }

    [Test]
    public async Task An_empty_value_is_stored_as_empty_not_missing()
    {
        await Storage.KeyValue.SetAsync("juliet", "flag", ReadOnlyMemory<byte>.Empty);

        Assert.That(await Storage.KeyValue.GetAsync("juliet", "flag"), Is.Empty);
    }

    [TestCase("private:storage:bookmarks", "private:storage:Bookmarks")]
    [TestCase("jabber:iq:private|{urn:xmpp:x} élément", "jabber:iq:private|{urn:xmpp:x} element")]
    [TestCase("A", "a")]
    public async Task Keys_are_kept_exactly_as_given(string key, string similarKey)
    {
        await Storage.KeyValue.SetAsync("juliet", key, Utf8(key));

        Assert.That(await Storage.KeyValue.GetAsync("juliet", key), Is.EqualTo(Utf8(key)));
        Assert.That(await Storage.KeyValue.GetAsync("juliet", similarKey), Is.Null);
    }

    [Test]
    public async Task Delete_returns_true_once_and_then_false()
    {
        await Storage.KeyValue.SetAsync("juliet", "vcard", Utf8("x"));

        Assert.That(await Storage.KeyValue.DeleteAsync("juliet", "vcard"), Is.True);
        Assert.That(await Storage.KeyValue.DeleteAsync("juliet", "vcard"), Is.False);
        Assert.That(await Storage.KeyValue.GetAsync("juliet", "vcard"), Is.Null);
    }

    [Test]
    public async Task List_returns_exactly_one_owners_documents_ordered_by_key()
    {
        await Storage.KeyValue.SetAsync("muc", "b", Utf8("2"));
        await Storage.KeyValue.SetAsync("muc", "a", Utf8("1"));
        await Storage.KeyValue.SetAsync("mu", "x", Utf8("short"));
        await Storage.KeyValue.SetAsync("muc2", "y", Utf8("long"));

        var list = await Storage.KeyValue.ListAsync("muc");

        Assert.That(list.Select(p => p.Key), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(list.Select(p => Encoding.UTF8.GetString(p.Value)), Is.EqualTo(new[] { "1", "2" }));
        Assert.That(await Storage.KeyValue.ListAsync("nobody"), Is.Empty);
    }

    [Test]
    public async Task Delete_all_removes_only_that_owners_documents()
    {
        // "jul" is a prefix of "juliet": owners must not bleed into each other.
        await Storage.KeyValue.SetAsync("juliet", "vcard", Utf8("j1"));
        await Storage.KeyValue.SetAsync("juliet", "private", Utf8("j2"));
        await Storage.KeyValue.SetAsync("jul", "vcard", Utf8("short"));
        await Storage.KeyValue.SetAsync("julietta", "vcard", Utf8("long"));

        await Storage.KeyValue.DeleteAllAsync("juliet");

        Assert.That(await Storage.KeyValue.GetAsync("juliet", "vcard"), Is.Null);
        Assert.That(await Storage.KeyValue.GetAsync("juliet", "private"), Is.Null);
        Assert.That(await Storage.KeyValue.GetAsync("jul", "vcard"), Is.EqualTo(Utf8("short")));
        Assert.That(await Storage.KeyValue.GetAsync("julietta", "vcard"), Is.EqualTo(Utf8("long")));
    }

    [Test]
    public async Task Flush_completes_after_writes()
    {
        await Storage.KeyValue.SetAsync("juliet", "vcard", Utf8("x"));

        await Storage.FlushAsync().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.That(await Storage.KeyValue.GetAsync("juliet", "vcard"), Is.EqualTo(Utf8("x")));
    }
}
