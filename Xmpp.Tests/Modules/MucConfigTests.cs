using Xmpp.Protocol;
using Xmpp.Protocol.Payloads;
using Xmpp.Tests.Support;

namespace Xmpp.Tests.Modules;

/// XEP-0045 §10: creating rooms (instant and reserved), the muc#roomconfig form, room information and entry rules.
[TestFixture]
public sealed class MucConfigTests : MucTestBase
{
    protected override void Configure(Dictionary<string, string?> o) => o["Xmpp:Muc:MaxRoomsPerUser"] = "3";

    [Test]
    public async Task Reserved_room_owner_gets_the_config_form_and_submitting_it_unlocks_the_room()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await JoinFullyAsync(alice, room, "Alice");
        var form = await alice.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>");
        var x = DataForm.In(form.Child("query", Ns.MucOwner)!)!;
        Assert.That(x.Type, Is.EqualTo("form"));
        Assert.That(x.FormType, Is.EqualTo(Ns.MucRoomConfig));
        Assert.That(x.FieldNames, Is.SupersetOf(new[]
        {
            "muc#roomconfig_roomname", "muc#roomconfig_persistentroom", "muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom",
            "muc#roomconfig_passwordprotectedroom", "muc#roomconfig_roomsecret", "muc#roomconfig_publicroom", "muc#roomconfig_whois",
            "muc#roomconfig_maxusers", "muc#maxhistoryfetch", "muc#roomconfig_allowpm", "muc#roomconfig_changesubject",
        }));
        var bob = await Connect("bob");
        Assert.That(ErrorCondition(await JoinAsync(bob, room, "Bob")), Is.EqualTo("item-not-found"));
        var r = await ConfigureAsync(alice, room, ("muc#roomconfig_roomname", "Tea"), ("muc#roomconfig_roomdesc", "About tea"));
        Assert.That(r.Attr("type"), Is.EqualTo("result"));
        Assert.That(Codes(await JoinFullyAsync(bob, room, "Bob")), Does.Contain(110));
    }

    [Test]
    public async Task Cancelling_the_initial_configuration_destroys_the_room()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await JoinFullyAsync(alice, room, "Alice");
        var r = await alice.IqAsync($"<iq type='set' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='cancel'/></query></iq>");
        Assert.That(r.Attr("type"), Is.EqualTo("result"));
        await ReceivePresenceFrom(alice, room + "/Alice", "unavailable");
        var info = await alice.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(ErrorCondition(info), Is.EqualTo("item-not-found"));
    }

    [Test]
    public async Task Only_owners_may_get_or_submit_the_configuration()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        var get = await bob.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>");
        Assert.That(ErrorCondition(get), Is.EqualTo("forbidden"));
        var set = await ConfigureAsync(bob, room, ("muc#roomconfig_membersonly", "1"));
        Assert.That(ErrorCondition(set), Is.EqualTo("forbidden"));
    }

    [Test]
    public async Task Invalid_configuration_values_are_refused_with_not_acceptable()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        Assert.That(ErrorCondition(await ConfigureAsync(alice, room, ("muc#roomconfig_membersonly", "maybe"))), Is.EqualTo("not-acceptable"));
        Assert.That(ErrorCondition(await ConfigureAsync(alice, room, ("muc#roomconfig_whois", "everybody"))), Is.EqualTo("not-acceptable"));
        Assert.That(ErrorCondition(await ConfigureAsync(alice, room, ("muc#roomconfig_maxusers", "-3"))), Is.EqualTo("not-acceptable"));
        Assert.That(ErrorCondition(await ConfigureAsync(alice, room, ("muc#roomconfig_passwordprotectedroom", "1"))), Is.EqualTo("not-acceptable"),
            "a password-protected room needs a password");
    }

    [Test]
    public async Task A_malformed_configuration_form_is_bad_request_and_changes_nothing()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        // XEP-0004 §3.2: each field name occurs once in a form.
        var r = await alice.IqAsync($"<iq type='set' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"
            + "<field var='muc#roomconfig_roomname'><value>One</value></field><field var='muc#roomconfig_roomname'><value>Two</value></field></x></query></iq>");
        Assert.That(ErrorCondition(r), Is.EqualTo("bad-request"), r.ToString());
        var info = await alice.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(info.Child("query", Ns.DiscoInfo)!.Child("identity", Ns.DiscoInfo)!.Attr("name"), Is.Not.EqualTo("One").And.Not.EqualTo("Two"));
    }

    [Test]
    public async Task Configuration_change_is_announced_to_occupants_with_104()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await ConfigureAsync(alice, room, ("muc#roomconfig_whois", "anyone"));
        var note = await bob.ReceiveAsync(e => e.Name == "message" && Codes(e).Contains(104));
        Assert.That(note.Attr("from"), Is.EqualTo(room));
        Assert.That(Codes(note), Does.Contain(172));
    }

    [Test]
    public async Task Room_info_shows_the_features_and_the_roominfo_form()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_roomname", "Tea"), ("muc#roomconfig_roomdesc", "About tea"),
            ("muc#roomconfig_membersonly", "1"), ("muc#roomconfig_moderatedroom", "1"), ("muc#roomconfig_publicroom", "0"));
        var bob = await Connect("bob");
        var info = await bob.IqAsync($"<iq type='get' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var query = info.Child("query", Ns.DiscoInfo)!;
        Assert.That(X.Matches(query, "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='conference' type='text' name='Tea'/></query>"));
        var features = query.Elements("feature", Ns.DiscoInfo).Select(f => f.Attr("var")).ToList();
        Assert.That(features, Is.SupersetOf(new[] { Ns.Muc, "muc_membersonly", "muc_moderated", "muc_hidden", "muc_temporary", "muc_unsecured",
            "muc_semianonymous", Ns.StanzaId, Ns.OccupantId, Ns.MucSelfPing }));
        var form = DataForm.In(query)!;
        Assert.That(form.FormType, Is.EqualTo(Ns.MucRoomInfo));
        Assert.That(form.Value("muc#roominfo_description"), Is.EqualTo("About tea"));
        Assert.That(form.Value("muc#roominfo_occupants"), Is.EqualTo("1"));
        var missing = await bob.IqAsync($"<iq type='get' to='nosuchroom@{Service}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.That(ErrorCondition(missing), Is.EqualTo("item-not-found"));
    }

    [Test]
    public async Task Public_rooms_are_listed_by_the_service_and_hidden_ones_are_not()
    {
        var shown = NewRoom("shown");
        var hidden = NewRoom("hidden");
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, shown, "Alice");
        await CreateInstantAsync(alice, hidden, "Alice");
        await ConfigureAsync(alice, hidden, ("muc#roomconfig_publicroom", "0"));
        var items = await alice.IqAsync($"<iq type='get' to='{Service}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        var jids = items.Child("query", Ns.DiscoItems)!.Elements().Select(e => e.Attr("jid")).ToList();
        Assert.That(jids, Does.Contain(shown).And.Not.Contain(hidden));
    }

    [Test]
    public async Task Members_only_room_refuses_non_members_with_registration_required()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_membersonly", "1"));
        var bob = await Connect("bob");
        Assert.That(ErrorCondition(await JoinAsync(bob, room, "Bob")), Is.EqualTo("registration-required"));
        Assert.That((await AdminAsync(alice, room, "<item affiliation='member' jid='bob@localhost'/>")).Attr("type"), Is.EqualTo("result"));
        var self = await JoinFullyAsync(bob, room, "Bob");
        Assert.That(Item(self)!.Attr("affiliation"), Is.EqualTo("member"));
    }

    [Test]
    public async Task Becoming_members_only_removes_non_members_with_322()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        await ConfigureAsync(alice, room, ("muc#roomconfig_membersonly", "1"));
        var gone = await ReceivePresenceFrom(bob, room + "/Bob", "unavailable");
        Assert.That(Codes(gone), Does.Contain(322).And.Contain(110));
    }

    [Test]
    public async Task Password_protected_room_needs_the_password()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_passwordprotectedroom", "1"), ("muc#roomconfig_roomsecret", "s3cret"));
        var bob = await Connect("bob");
        Assert.That(ErrorCondition(await JoinAsync(bob, room, "Bob")), Is.EqualTo("not-authorized"));
        Assert.That(ErrorCondition(await JoinAsync(bob, room, "Bob", "<password>wrong</password>")), Is.EqualTo("not-authorized"));
        Assert.That(Codes(await JoinAsync(bob, room, "Bob", "<password>s3cret</password>")), Does.Contain(110));
    }

    [Test]
    public async Task Full_room_refuses_further_occupants_with_service_unavailable()
    {
        var room = NewRoom();
        var alice = await Connect("alice");
        await CreateInstantAsync(alice, room, "Alice");
        await ConfigureAsync(alice, room, ("muc#roomconfig_maxusers", "2"));
        var bob = await Connect("bob");
        await JoinFullyAsync(bob, room, "Bob");
        var carol = await Connect("carol");
        Assert.That(ErrorCondition(await JoinAsync(carol, room, "Carol")), Is.EqualTo("service-unavailable"));
    }

    [Test]
    public async Task Creating_more_rooms_than_allowed_is_refused_with_not_allowed()
    {
        var dave = await Connect("dave");
        for (int i = 0; i < 3; i++) await CreateInstantAsync(dave, NewRoom("dave"), "Dave");
        var refused = await JoinAsync(dave, NewRoom("dave"), "Dave");
        Assert.That(ErrorCondition(refused), Is.EqualTo("not-allowed"));
    }
}
