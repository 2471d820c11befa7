using Xmpp.Protocol;
using Xmpp.Protocol.Xml;
using Xmpp.Server.Modules.Pep;
using Xmpp.Storage;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// What real clients keep in PEP, published the way Conversations, Dino and Gajim publish it.
public sealed partial class PepModuleTests
{
    private const string AxolotlDevices = "eu.siacs.conversations.axolotl.devicelist";
    private const string AxolotlBundles = "eu.siacs.conversations.axolotl.bundles:";
    private const string Axolotl = "eu.siacs.conversations.axolotl";
    private const string Omemo2 = "urn:xmpp:omemo:2";
    private const string Omemo2Devices = "urn:xmpp:omemo:2:devices";
    private const string Omemo2Bundles = "urn:xmpp:omemo:2:bundles";
    private const string AvatarData = "urn:xmpp:avatar:data";
    private const string AvatarMetadata = "urn:xmpp:avatar:metadata";
    private const string Bookmarks = "urn:xmpp:bookmarks:1";
    private const string Nick = "http://jabber.org/protocol/nick";
    private const string Geoloc = "http://jabber.org/protocol/geoloc";

    [Test]
    public async Task Legacy_omemo_device_list_and_bundle_are_public_and_the_device_list_reaches_contacts()
    {
        await using var alice = await Online("alice", "conversations", AxolotlDevices);
        await using var bob = await Online("bob", "conversations", AxolotlDevices);
        var open = Options(("pubsub#access_model", "open"));
        var devices = $"<list xmlns='{Axolotl}'><device id='1234'/></list>";
        Assert.That((await Publish(alice, AxolotlDevices, devices, "current", open)).Attr("type"), Is.EqualTo("result"));
        var bundle = $"<bundle xmlns='{Axolotl}'><signedPreKeyPublic signedPreKeyId='1'>BQ==</signedPreKeyPublic><signedPreKeySignature>AA==</signedPreKeySignature>" +
            $"<identityKey>BQ==</identityKey><prekeys><preKeyPublic preKeyId='1'>BQ==</preKeyPublic></prekeys></bundle>";
        Assert.That((await Publish(alice, AxolotlBundles + "1234", bundle, "current", open)).Attr("type"), Is.EqualTo("result"));

        var n = await bob.ReceiveAsync(Event(AxolotlDevices));
        Assert.That(X.Matches(n, $"<message><event xmlns='{Ns.PubSubEvent}'><items node='{AxolotlDevices}'><item id='current'><list xmlns='{Axolotl}'><device id='1234'/></list></item></items></event></message>"), n.ToString());
        Assert.That(await alice.ReceiveAsync(Event(AxolotlDevices)), Is.Not.Null, "the owner's own client learns its device list too");

        // Someone not in the roster can still start an encrypted chat: bundles are open.
        await using var carol = await Online("carol", "conversations");
        var got = await Items(carol, "alice@localhost", AxolotlBundles + "1234", "max_items='1'");
        Assert.That(X.Matches(got, $"<iq type='result'><pubsub xmlns='{Ns.PubSub}'><items><item id='current'><bundle xmlns='{Axolotl}'><identityKey>BQ==</identityKey></bundle></item></items></pubsub></iq>"), got.ToString());
    }

    [Test]
    public async Task Omemo_2_bundles_keep_one_item_per_device_id_under_max_items_max()
    {
        await using var alice = await Online("alice", "dino");
        var options = Options(("pubsub#access_model", "open"), ("pubsub#max_items", "max"));
        foreach (var id in new[] { "111", "222", "333" })
        {
            var bundle = $"<bundle xmlns='{Omemo2}'><spk id='1'>BQ==</spk><spks>AA==</spks><ik>BQ{id}</ik><prekeys><pk id='1'>BQ==</pk></prekeys></bundle>";
            Assert.That((await Publish(alice, Omemo2Bundles, bundle, id, options)).Attr("type"), Is.EqualTo("result"));
        }
        var devices = $"<devices xmlns='{Omemo2}'><device id='111'/><device id='222' label='phone'/><device id='333'/></devices>";
        Assert.That((await Publish(alice, Omemo2Devices, devices, "current", Options(("pubsub#access_model", "open")))).Attr("type"), Is.EqualTo("result"));

        await using var carol = await Online("carol", "dino");
        var one = await Items(carol, "alice@localhost", Omemo2Bundles, children: "<item id='222'/>");
        Assert.That(ItemIds(one), Is.EqualTo(new[] { "222" }));
        Assert.That(one.Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Child("item", Ns.PubSub)!.Child("bundle", Omemo2)!.ChildText("ik", Omemo2), Is.EqualTo("BQ222"));
        Assert.That(ItemIds(await Items(carol, "alice@localhost", Omemo2Bundles)), Is.EquivalentTo(new[] { "111", "222", "333" }));
    }

    [Test]
    public async Task Avatar_data_and_metadata_are_served_and_metadata_notifies_contacts()
    {
        await using var alice = await Online("alice", "conversations");
        await using var bob = await Online("bob", "gajim", AvatarMetadata);
        const string hash = "111f4b3c50d7b0df729d299bc6f8e9ef9066971f";
        var open = Options(("pubsub#access_model", "open"));
        Assert.That((await Publish(alice, AvatarData, $"<data xmlns='{AvatarData}'>iVBORw0KGgo=</data>", hash, open)).Attr("type"), Is.EqualTo("result"));
        Assert.That((await Publish(alice, AvatarMetadata, $"<metadata xmlns='{AvatarMetadata}'><info bytes='8' id='{hash}' height='1' width='1' type='image/png'/></metadata>", hash, open)).Attr("type"), Is.EqualTo("result"));

        var n = await bob.ReceiveAsync(Event(AvatarMetadata));
        Assert.That(X.Matches(n, $"<message><event xmlns='{Ns.PubSubEvent}'><items node='{AvatarMetadata}'><item id='{hash}'><metadata xmlns='{AvatarMetadata}'><info id='{hash}'/></metadata></item></items></event></message>"), n.ToString());
        var data = await Items(bob, "alice@localhost", AvatarData, children: $"<item id='{hash}'/>");
        Assert.That(data.Child("pubsub", Ns.PubSub)!.Child("items", Ns.PubSub)!.Child("item", Ns.PubSub)!.ChildText("data", AvatarData), Is.EqualTo("iVBORw0KGgo="));
    }

    [Test]
    public async Task Bookmarks_are_private_many_items_and_never_pushed_to_contacts()
    {
        await using var gajim = await Online("alice", "gajim", Bookmarks);
        await using var phone = await Online("alice", "phone", Bookmarks);
        await using var bob = await Online("bob", "pc", Bookmarks);
        // XEP-0402 §5: the options Gajim and Conversations send.
        var options = Options(("pubsub#persist_items", "true"), ("pubsub#max_items", "max"),
            ("pubsub#send_last_published_item", "never"), ("pubsub#access_model", "whitelist"));
        foreach (var room in new[] { "room1@muc.example", "room2@muc.example" })
        {
            var r = await Publish(gajim, Bookmarks, $"<conference xmlns='{Bookmarks}' name='{room}' autojoin='true'><nick>alice</nick></conference>", room, options);
            Assert.That(r.Attr("type"), Is.EqualTo("result"), r.ToString());
        }
        Assert.That((await phone.ReceiveAsync(Event(Bookmarks))).ToString(), Does.Contain("room1@muc.example"));
        Assert.That(ItemIds(await Items(phone, "alice@localhost", Bookmarks)), Is.EqualTo(new[] { "room1@muc.example", "room2@muc.example" }));
        Assert.That(await bob.TryReceiveAsync(Event(Bookmarks), Quiet), Is.Null);
        AssertError(await Items(bob, "alice@localhost", Bookmarks), StanzaErrors.NotAllowed, "closed-node");

        // send_last_published_item 'never': a new resource fetches bookmarks itself, none are pushed.
        await using var laptop = await Online("alice", "laptop", Bookmarks);
        Assert.That(await laptop.TryReceiveAsync(Event(Bookmarks), Quiet), Is.Null);
    }

    [Test]
    public async Task Nickname_and_location_reach_contacts_that_want_them()
    {
        await using var alice = await Online("alice", "pc");
        await using var bob = await Online("bob", "pc", Nick, Geoloc);
        await Publish(alice, Nick, $"<nick xmlns='{Nick}'>Alice in Wonderland</nick>", "current");
        await Publish(alice, Geoloc, $"<geoloc xmlns='{Geoloc}' xml:lang='en'><lat>45.44</lat><lon>12.33</lon><locality>Venice</locality></geoloc>", "current");
        Assert.That((await bob.ReceiveAsync(Event(Nick))).Child("event", Ns.PubSubEvent)!.Child("items", Ns.PubSubEvent)!.Child("item", Ns.PubSubEvent)!.ChildText("nick", Nick), Is.EqualTo("Alice in Wonderland"));
        var geo = await bob.ReceiveAsync(Event(Geoloc));
        Assert.That(X.Matches(geo, $"<message><event xmlns='{Ns.PubSubEvent}'><items node='{Geoloc}'><item id='current'><geoloc xmlns='{Geoloc}'><locality>Venice</locality></geoloc></item></items></event></message>"), geo.ToString());
    }

    // ---- Persistence and expiry ----

    [Test]
    public async Task Items_and_configuration_survive_a_restart_but_items_of_non_persistent_nodes_do_not()
    {
        var dir = Path.Combine(Path.GetTempPath(), "xmpp-pep-" + Guid.NewGuid().ToString("N"));
        try
        {
            await _server.DisposeAsync();
            _server = await StartServerAsync(dir);
            await using (var alice = await Online("alice", "pc"))
            {
                await Publish(alice, "kept", TuneXml("a"), "1", Options(("pubsub#access_model", "open"), ("pubsub#max_items", "5")));
                await Publish(alice, "kept", TuneXml("b"), "2", Options(("pubsub#access_model", "open"), ("pubsub#max_items", "5")));
                await Publish(alice, "fleeting", TuneXml("c"), "1", Options(("pubsub#persist_items", "false")));
                Assert.That(ItemIds(await Items(alice, "alice@localhost", "fleeting")), Is.EqualTo(new[] { "1" }), "kept in memory while running");
            }
            await _server.StopAsync();
            _resolvedVers.Clear();
            _server = await StartServerAsync(dir);

            await using var carol = await Online("carol", "pc");
            Assert.That(ItemIds(await Items(carol, "alice@localhost", "kept")), Is.EqualTo(new[] { "1", "2" }), "items and open access survive");
            await using var alice2 = await Online("alice", "pc");
            Assert.That(ItemIds(await Items(alice2, "alice@localhost", "fleeting")), Is.Empty, "the node survives, its items do not");
        }
        finally
        {
            await _server.DisposeAsync();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [Test]
    public async Task Status_items_expire_after_their_lifetime_and_are_removed_from_storage_in_the_background()
    {
        await _server.DisposeAsync();
        _server = await StartServerAsync(configure: o =>
        {
            o["Xmpp:Pep:StatusItemLifetimeSeconds"] = "2";
            o["Xmpp:Pep:ExpirySweepSeconds"] = "1";
        });
        await using var alice = await Online("alice", "pc");
        await using var bob = await Online("bob", "pc", Ns.UserStatus);
        await Publish(alice, Ns.UserStatus, "<status xmlns='urn:xmppd:status:0'><text>at the beach</text></status>", "s1");
        Assert.That(await bob.ReceiveAsync(Event(Ns.UserStatus)), Is.Not.Null);
        Assert.That(ItemIds(await Items(bob, "alice@localhost", Ns.UserStatus)), Is.EqualTo(new[] { "s1" }));
        await using var carol = await Online("carol", "pc");
        AssertError(await Items(carol, "alice@localhost", Ns.UserStatus), StanzaErrors.NotAuthorized, "presence-subscription-required");

        var kv = _server.Get<IStorage>().KeyValue;
        Assert.That(await Wait.UntilAsync(async () =>
        {
            var doc = await kv.GetAsync("alice", "pep|" + Ns.UserStatus);
            return doc is not null && !System.Text.Encoding.UTF8.GetString(doc).Contains("at the beach");
        }, TimeSpan.FromSeconds(15)), "the sweeper removes the expired item from storage");
        Assert.That(ItemIds(await Items(bob, "alice@localhost", Ns.UserStatus)), Is.Empty);
    }

    [Test]
    public async Task Status_items_vanish_24_hours_after_publication_by_the_servers_clock()
    {
        var clock = new ManualClock();
        await _server.DisposeAsync();
        _server = await StartServerAsync(configure: o =>
        {
            o["Xmpp:Pep:ExpirySweepSeconds"] = "1";
            o["Xmpp:Ping:IdleSeconds"] = "0"; // the jumps of the clock must not make clients look idle
        }, services: s => Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton<TimeProvider>(s, clock));
        await using var alice = await Online("alice", "pc");
        await using var bob = await Online("bob", "pc");
        const string first = "<status xmlns='urn:xmppd:status:0'><text>breakfast</text></status>";
        const string second = "<status xmlns='urn:xmppd:status:0'><text>dinner</text></status>";
        await Publish(alice, Ns.UserStatus, first, "morning");
        clock.Advance(TimeSpan.FromHours(23) + TimeSpan.FromMinutes(59));
        await Publish(alice, Ns.UserStatus, second, "evening");
        Assert.That(ItemIds(await Items(bob, "alice@localhost", Ns.UserStatus)), Is.EqualTo(new[] { "morning", "evening" }), "both younger than a day");

        clock.Advance(TimeSpan.FromMinutes(2));
        Assert.That(ItemIds(await Items(bob, "alice@localhost", Ns.UserStatus)), Is.EqualTo(new[] { "evening" }), "the morning post is a day old");
        var kv = _server.Get<IStorage>().KeyValue;
        Assert.That(await Wait.UntilAsync(async () =>
            System.Text.Encoding.UTF8.GetString(await kv.GetAsync("alice", "pep|" + Ns.UserStatus) ?? []) is var doc
            && !doc.Contains("breakfast") && doc.Contains("dinner")), "the sweeper removed only the expired post from storage");
    }

    [Test]
    public async Task An_expired_item_is_not_returned_even_before_the_sweeper_runs()
    {
        await _server.DisposeAsync();
        _server = await StartServerAsync(configure: o => o["Xmpp:Pep:ExpirySweepSeconds"] = "3600");
        await using var alice = await Online("alice", "pc");
        await Publish(alice, "short", TuneXml("x"), "1", Options(("pubsub#item_expire", "1")));
        Assert.That(ItemIds(await Items(alice, "alice@localhost", "short")), Is.EqualTo(new[] { "1" }));
        Assert.That(await Wait.UntilAsync(async () => ItemIds(await Items(alice, "alice@localhost", "short")).Count == 0, TimeSpan.FromSeconds(5)));
    }

    // ---- The service interface for other modules ----

    [Test]
    public async Task Another_module_can_publish_read_and_watch_through_IPepService()
    {
        var pep = _server.Get<IPepService>();
        var changes = new List<PepChange>();
        using var watch = pep.OnChange(Nick, change => { lock (changes) changes.Add(change); return ValueTask.CompletedTask; });
        await using var bob = await Online("bob", "pc", Nick);

        var (id, error) = await pep.PublishAsync(Xmpp.Protocol.Jid.Parse("alice@localhost"), Nick, "current", X.Parse($"<nick xmlns='{Nick}'>Server-set</nick>"));
        Assert.That(error, Is.Null);
        Assert.That(id, Is.EqualTo("current"));
        Assert.That((await bob.ReceiveAsync(Event(Nick))).ToString(), Does.Contain("Server-set"));
        Assert.That((await pep.GetItemAsync(Xmpp.Protocol.Jid.Parse("alice@localhost"), Nick))!.Payload.Text, Is.EqualTo("Server-set"));

        await using var alice = await Online("alice", "pc");
        await Publish(alice, Nick, $"<nick xmlns='{Nick}'>Client-set</nick>", "current");
        Assert.That(await pep.RetractAsync(Xmpp.Protocol.Jid.Parse("alice@localhost"), Nick, "current"), Is.True);
        Assert.That(await Wait.UntilAsync(() => { lock (changes) return changes.Count == 3; }));
        lock (changes)
            Assert.That(changes.Select(c => c.Kind), Is.EqualTo(new[] { PepChangeKind.Published, PepChangeKind.Published, PepChangeKind.Retracted }));
        Assert.That(await pep.GetItemAsync(Xmpp.Protocol.Jid.Parse("alice@localhost"), Nick), Is.Null);
    }

    [Test]
    public async Task Deleting_an_account_removes_its_pep_nodes()
    {
        await using (var alice = await Online("alice", "pc"))
            await Publish(alice, Nick, $"<nick xmlns='{Nick}'>gone soon</nick>", "current");
        var kv = _server.Get<IStorage>().KeyValue;
        Assert.That(await kv.GetAsync("alice", "pep|" + Nick), Is.Not.Null);

        Assert.That(await _server.Get<Xmpp.Server.Auth.AccountService>().DeleteAsync("alice"), Is.True);
        Assert.That(await Wait.UntilAsync(async () => await kv.GetAsync("alice", "pep|" + Nick) is null && await kv.GetAsync("alice", "pep") is null));
        await _server.AddUserAsync("alice", "alice-pw");
        await using var again = await Online("alice", "pc");
        AssertError(await Items(again, "alice@localhost", Nick), StanzaErrors.ItemNotFound);
    }

    [Test]
    public void Caps_verification_string_matches_the_xep_0115_example()
    {
        // XEP-0115 §5.2 simple example.
        var query = X.Parse($"<query xmlns='{Ns.DiscoInfo}'><identity category='client' name='Exodus 0.9.1' type='pc'/>" +
            $"<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>" +
            $"<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query>");
        Assert.That(PepCaps.VerificationString(query, "sha-1"), Is.EqualTo("QgayPKawpkPSDYmwT/WM94uAlu0="));
        Assert.That(PepCaps.VerificationString(query, "md5"), Is.Null);
    }
}
