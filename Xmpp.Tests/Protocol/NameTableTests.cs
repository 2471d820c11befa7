using Xmpp.Protocol;
using Xmpp.Protocol.Xml;

namespace Xmpp.Tests.Protocol;

public class NameTableTests
{
    [Test]
    public void Common_table_holds_stanza_names_and_namespaces()
    {
        Assert.That(NameTable.Common.TryGet("message"u8, out var message), Is.True);
        Assert.That(message, Is.EqualTo("message"));
        Assert.That(NameTable.Common.TryGet("jabber:client"u8, out var client), Is.True);
        Assert.That(client, Is.EqualTo(Ns.Client));
        Assert.That(NameTable.Common.TryGet("not-a-common-name"u8, out _), Is.False);
    }

    [Test]
    public void Common_table_is_frozen()
    {
        int before = NameTable.Common.Count;
        var name = NameTable.Common.GetOrAdd("freshly-made-up-name"u8);
        Assert.That(name, Is.EqualTo("freshly-made-up-name"));
        Assert.That(NameTable.Common.Count, Is.EqualTo(before));
        Assert.That(NameTable.Common.TryGet("freshly-made-up-name"u8, out _), Is.False);
    }

    [Test]
    public void Child_table_reuses_parent_names_and_interns_its_own()
    {
        var table = new NameTable(NameTable.Common);
        Assert.That(table.GetOrAdd("presence"u8), Is.SameAs(NameTable.Common.GetOrAdd("presence"u8)));
        Assert.That(table.Count, Is.Zero);
        var first = table.GetOrAdd("x-custom"u8);
        Assert.That(table.GetOrAdd("x-custom"u8), Is.SameAs(first));
        Assert.That(table.Count, Is.EqualTo(1));
    }

    [Test]
    public void Full_table_stops_growing_but_still_returns_correct_strings()
    {
        var table = new NameTable(capacity: 2, maxKeyBytes: 8);
        table.GetOrAdd("one"u8);
        table.GetOrAdd("two"u8);
        var three = table.GetOrAdd("three"u8);
        Assert.That(three, Is.EqualTo("three"));
        Assert.That(table.Count, Is.EqualTo(2));
        Assert.That(table.GetOrAdd("three"u8), Is.Not.SameAs(three));
        Assert.That(new NameTable(maxKeyBytes: 4).GetOrAdd("toolong"u8), Is.EqualTo("toolong"));
    }

    [Test]
    public void Multibyte_names_round_trip()
    {
        var table = new NameTable();
        var name = table.GetOrAdd("größe-😀"u8);
        Assert.That(name, Is.EqualTo("größe-😀"));
        Assert.That(table.GetOrAdd("größe-😀"u8), Is.SameAs(name));
    }

    [Test]
    public void Table_that_grows_past_its_initial_size_still_finds_every_name_it_interned()
    {
        // A new table starts with a handful of buckets and rehashes as names arrive: every earlier name must
        // still come back as the same instance after each growth, up to the capacity.
        var table = new NameTable(capacity: 300);
        var interned = new List<string>();
        for (int i = 0; i < 300; i++)
        {
            interned.Add(table.GetOrAdd(System.Text.Encoding.UTF8.GetBytes($"name-{i}")));
            for (int j = 0; j <= i; j += 37)
                Assert.That(table.GetOrAdd(System.Text.Encoding.UTF8.GetBytes($"name-{j}")), Is.SameAs(interned[j]));
        }
        Assert.That(table.Count, Is.EqualTo(300));
        for (int i = 0; i < 300; i++)
            Assert.That(table.TryGet(System.Text.Encoding.UTF8.GetBytes($"name-{i}"), out var found) && ReferenceEquals(found, interned[i]), Is.True, $"name-{i}");
    }
}
