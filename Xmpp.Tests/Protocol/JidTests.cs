using Xmpp.Protocol;
using Xmpp.Protocol.Precis;

namespace Xmpp.Tests.Protocol;

public class JidTests
{
    private static readonly string A1023 = new('a', 1023);
    private static readonly string A1024 = new('a', 1024);

    // RFC 7622 §3.5.1 examples first, then our own: case mapping, width mapping, NFC, IDNA, literals, limits.
    [TestCase("juliet@example.com", "juliet", "example.com", null, "juliet@example.com", TestName = "Rfc7622_bare_jid_is_valid")]
    [TestCase("juliet@example.com/foo", "juliet", "example.com", "foo", "juliet@example.com/foo", TestName = "Rfc7622_full_jid_is_valid")]
    [TestCase("juliet@example.com/foo bar", "juliet", "example.com", "foo bar", "juliet@example.com/foo bar", TestName = "Rfc7622_space_in_resource_is_valid")]
    [TestCase("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar", "juliet@example.com/foo@bar", TestName = "Rfc7622_at_sign_in_resource_is_valid")]
    [TestCase("foo\\20bar@example.com", "foo\\20bar", "example.com", null, "foo\\20bar@example.com", TestName = "Rfc7622_backslash_in_localpart_is_valid")]
    [TestCase("fussball@example.com", "fussball", "example.com", null, "fussball@example.com", TestName = "Rfc7622_fussball_is_valid")]
    [TestCase("fu\u00DFball@example.com", "fu\u00DFball", "example.com", null, "fu\u00DFball@example.com", TestName = "Rfc7622_sharp_s_is_kept")]
    [TestCase("\u03C0@example.com", "\u03C0", "example.com", null, "\u03C0@example.com", TestName = "Rfc7622_greek_pi_is_valid")]
    [TestCase("\u03A3@example.com/foo", "\u03C3", "example.com", "foo", "\u03C3@example.com/foo", TestName = "Rfc7622_capital_sigma_maps_to_small_sigma")]
    [TestCase("\u03C3@example.com/foo", "\u03C3", "example.com", "foo", "\u03C3@example.com/foo", TestName = "Rfc7622_small_sigma_is_valid")]
    [TestCase("\u03C2@example.com/foo", "\u03C2", "example.com", "foo", "\u03C2@example.com/foo", TestName = "Rfc7622_final_sigma_is_valid")]
    [TestCase("king@example.com/\u265A", "king", "example.com", "\u265A", "king@example.com/\u265A", TestName = "Rfc7622_chess_symbol_in_resource_is_valid")]
    [TestCase("example.com", null, "example.com", null, "example.com", TestName = "Rfc7622_domain_only_is_valid")]
    [TestCase("example.com/foobar", null, "example.com", "foobar", "example.com/foobar", TestName = "Rfc7622_domain_with_resource_is_valid")]
    [TestCase("a.example.com/b@example.net", null, "a.example.com", "b@example.net", "a.example.com/b@example.net", TestName = "Rfc7622_resource_that_looks_like_a_jid_is_valid")]
    [TestCase("Juliet@Example.COM/Balcony", "juliet", "example.com", "Balcony", "juliet@example.com/Balcony", TestName = "Localpart_and_domain_are_lowercased_but_resource_case_is_kept")]
    [TestCase("\uFF2A\uFF35\uFF2C\uFF29\uFF25\uFF34@example.com", "juliet", "example.com", null, "juliet@example.com", TestName = "Fullwidth_localpart_is_width_mapped_and_lowercased")]
    [TestCase("juliet@\uFF45\uFF58\uFF41\uFF4D\uFF50\uFF4C\uFF45\uFF0E\uFF43\uFF4F\uFF4D", "juliet", "example.com", null, "juliet@example.com", TestName = "Fullwidth_domain_is_width_mapped")]
    [TestCase("juliet@example.com/\uFF28", "juliet", "example.com", "\uFF28", "juliet@example.com/\uFF28", TestName = "Fullwidth_resource_is_kept_as_is")]
    [TestCase("e\u0301@example.com", "\u00E9", "example.com", null, "\u00E9@example.com", TestName = "Localpart_is_normalized_to_nfc")]
    [TestCase("juliet@example.com/e\u0301", "juliet", "example.com", "\u00E9", "juliet@example.com/\u00E9", TestName = "Resource_is_normalized_to_nfc")]
    [TestCase("juliet@example.com/a\u00A0b", "juliet", "example.com", "a b", "juliet@example.com/a b", TestName = "Non_ascii_space_in_resource_becomes_ascii_space")]
    [TestCase("juliet@example.com/ Spaced ", "juliet", "example.com", " Spaced ", "juliet@example.com/ Spaced ", TestName = "Resource_keeps_leading_and_trailing_spaces")]
    [TestCase("juliet@example.com/a/b", "juliet", "example.com", "a/b", "juliet@example.com/a/b", TestName = "Resource_may_contain_slashes")]
    [TestCase("juliet@example.com/@", "juliet", "example.com", "@", "juliet@example.com/@", TestName = "Resource_may_be_a_single_at_sign")]
    [TestCase("juliet@example.com.", "juliet", "example.com", null, "juliet@example.com", TestName = "Trailing_dot_of_domain_is_removed")]
    [TestCase("juliet@example.com./r", "juliet", "example.com", "r", "juliet@example.com/r", TestName = "Trailing_dot_before_resource_is_removed")]
    [TestCase("juliet@m\u00FCnchen.de", "juliet", "m\u00FCnchen.de", null, "juliet@m\u00FCnchen.de", TestName = "Unicode_domain_is_kept_as_u_labels")]
    [TestCase("juliet@xn--mnchen-3ya.de", "juliet", "m\u00FCnchen.de", null, "juliet@m\u00FCnchen.de", TestName = "A_labels_are_converted_to_u_labels")]
    [TestCase("juliet@M\u00DCNCHEN.DE", "juliet", "m\u00FCnchen.de", null, "juliet@m\u00FCnchen.de", TestName = "Unicode_domain_is_case_folded")]
    [TestCase("127.0.0.1", null, "127.0.0.1", null, "127.0.0.1", TestName = "Ipv4_literal_is_a_valid_domain")]
    [TestCase("juliet@127.0.0.1/r", "juliet", "127.0.0.1", "r", "juliet@127.0.0.1/r", TestName = "Ipv4_literal_works_with_localpart_and_resource")]
    [TestCase("[::1]", null, "[::1]", null, "[::1]", TestName = "Ipv6_literal_is_a_valid_domain")]
    [TestCase("juliet@[::1]/r", "juliet", "[::1]", "r", "juliet@[::1]/r", TestName = "Ipv6_literal_works_with_localpart_and_resource")]
    [TestCase("[0:0:0:0:0:0:0:1]", null, "[::1]", null, "[::1]", TestName = "Ipv6_literal_is_written_in_canonical_form")]
    [TestCase("[2001:DB8::1]", null, "[2001:db8::1]", null, "[2001:db8::1]", TestName = "Ipv6_literal_hex_is_lowercased")]
    [TestCase("\u039F\u0394\u03A5\u03A3\u03A3\u0395\u03A5\u03A3@example.com", "\u03BF\u03B4\u03C5\u03C3\u03C3\u03B5\u03C5\u03C2", "example.com", null, "\u03BF\u03B4\u03C5\u03C3\u03C3\u03B5\u03C5\u03C2@example.com", TestName = "Word_final_capital_sigma_maps_to_final_sigma")]
    [TestCase("\u05D0\u05D1@example.com", "\u05D0\u05D1", "example.com", null, "\u05D0\u05D1@example.com", TestName = "Hebrew_localpart_passes_the_bidi_rule")]
    [TestCase("user.name+tag_1-x@example.com", "user.name+tag_1-x", "example.com", null, "user.name+tag_1-x@example.com", TestName = "Ascii_punctuation_other_than_the_barred_set_is_allowed_in_localpart")]
    [TestCase("123@localhost", "123", "localhost", null, "123@localhost", TestName = "Digits_only_localpart_and_single_label_domain_are_valid")]
    [TestCase("juliet@example.com/\u5C0F\u8C37", "juliet", "example.com", "\u5C0F\u8C37", "juliet@example.com/\u5C0F\u8C37", TestName = "Cjk_resource_is_valid")]
    [TestCase("\u4F8B@\u4F8B\u3048.\u30C6\u30B9\u30C8", "\u4F8B", "\u4F8B\u3048.\u30C6\u30B9\u30C8", null, "\u4F8B@\u4F8B\u3048.\u30C6\u30B9\u30C8", TestName = "Japanese_localpart_and_domain_are_valid")]
    [TestCase("juliet@example.com\u3002", "juliet", "example.com", null, "juliet@example.com", TestName = "Trailing_ideographic_full_stop_is_removed")]
    public void Parse_accepts_valid_jids(string input, string? local, string domain, string? resource, string canonical)
    {
        var jid = Jid.Parse(input);
        Assert.Multiple(() =>
        {
            Assert.That(jid.Local, Is.EqualTo(local));
            Assert.That(jid.Domain, Is.EqualTo(domain));
            Assert.That(jid.Resource, Is.EqualTo(resource));
            Assert.That(jid.ToString(), Is.EqualTo(canonical));
            Assert.That(Jid.TryParse(input, out var again), Is.True);
            Assert.That(again, Is.EqualTo(jid));
        });
    }

    // RFC 7622 §3.5.2 examples first, then our own.
    [TestCase("\"juliet\"@example.com", TestName = "Rfc7622_quotes_in_localpart_are_rejected")]
    [TestCase("foo bar@example.com", TestName = "Rfc7622_space_in_localpart_is_rejected")]
    [TestCase("@example.com/", TestName = "Rfc7622_empty_localpart_and_resource_are_rejected")]
    [TestCase("henry\u2163@example.com", TestName = "Rfc7622_roman_numeral_in_localpart_is_rejected")]
    [TestCase("\u265A@example.com", TestName = "Rfc7622_symbol_in_localpart_is_rejected")]
    [TestCase("juliet@", TestName = "Rfc7622_empty_domain_after_at_is_rejected")]
    [TestCase("/foobar", TestName = "Rfc7622_empty_domain_before_slash_is_rejected")]
    [TestCase("", TestName = "Empty_string_is_rejected")]
    [TestCase("@example.com", TestName = "Empty_localpart_is_rejected")]
    [TestCase("juliet@example.com/", TestName = "Empty_resource_is_rejected")]
    [TestCase("juliet@/res", TestName = "Empty_domain_between_separators_is_rejected")]
    [TestCase("juliet&romeo@example.com", TestName = "Ampersand_in_localpart_is_rejected")]
    [TestCase("jul'iet@example.com", TestName = "Apostrophe_in_localpart_is_rejected")]
    [TestCase("a:b@example.com", TestName = "Colon_in_localpart_is_rejected")]
    [TestCase("a<b@example.com", TestName = "Less_than_in_localpart_is_rejected")]
    [TestCase("a>b@example.com", TestName = "Greater_than_in_localpart_is_rejected")]
    [TestCase("a@b@example.com", TestName = "Second_at_sign_makes_the_localpart_invalid")]
    [TestCase("a\uFF20b@example.com", TestName = "Fullwidth_at_sign_maps_to_a_barred_character")]
    [TestCase("ju\u0007liet@example.com", TestName = "Control_character_in_localpart_is_rejected")]
    [TestCase("juliet@example.com/a\u0000b", TestName = "Nul_in_resource_is_rejected")]
    [TestCase("juliet@example.com/\tres", TestName = "Tab_in_resource_is_rejected")]
    [TestCase("juliet@example.com/a\u007F", TestName = "Delete_in_resource_is_rejected")]
    [TestCase("juliet@example.com/a\u0085", TestName = "C1_control_in_resource_is_rejected")]
    [TestCase("juliet@example.com/a\u200Bb", TestName = "Zero_width_space_in_resource_is_rejected")]
    [TestCase("juliet@example.com/\uE000", TestName = "Private_use_character_in_resource_is_rejected")]
    [TestCase("juliet@example.com/a\u2028", TestName = "Line_separator_in_resource_is_rejected")]
    [TestCase("ju\u00ADliet@example.com", TestName = "Soft_hyphen_in_localpart_is_rejected")]
    [TestCase("\u0378@example.com", TestName = "Unassigned_code_point_in_localpart_is_rejected")]
    [TestCase("a\u05D0@example.com", TestName = "Mixed_direction_localpart_fails_the_bidi_rule")]
    [TestCase("juliet@exa mple.com", TestName = "Space_in_domain_is_rejected")]
    [TestCase("juliet@example..com", TestName = "Empty_domain_label_is_rejected")]
    [TestCase("juliet@-example.com", TestName = "Label_starting_with_hyphen_is_rejected")]
    [TestCase("juliet@example-.com", TestName = "Label_ending_with_hyphen_is_rejected")]
    [TestCase("juliet@ex_ample.com", TestName = "Underscore_in_domain_is_rejected")]
    [TestCase("juliet@exa<mple.com", TestName = "Angle_bracket_in_domain_is_rejected")]
    [TestCase("juliet@example.com..", TestName = "Two_trailing_dots_are_rejected")]
    [TestCase(".", TestName = "Domain_of_only_a_dot_is_rejected")]
    [TestCase("juliet@xn--zz.com", TestName = "Invalid_a_label_is_rejected")]
    [TestCase("juliet@\uFF20example.com", TestName = "Fullwidth_at_sign_in_domain_is_rejected")]
    [TestCase("juliet@[::1", TestName = "Unclosed_ipv6_literal_is_rejected")]
    [TestCase("juliet@[1.2.3.4]", TestName = "Ipv4_address_in_brackets_is_rejected")]
    [TestCase("juliet@[::1%eth0]", TestName = "Ipv6_zone_identifier_is_rejected")]
    [TestCase("juliet@[fe80::zz]", TestName = "Malformed_ipv6_literal_is_rejected")]
    public void Parse_rejects_invalid_jids(string input)
    {
        Assert.Multiple(() =>
        {
            Assert.That(() => Jid.Parse(input), Throws.TypeOf<JidFormatException>());
            Assert.That(Jid.TryParse(input, out var jid), Is.False);
            Assert.That(jid, Is.Null);
        });
    }

    // Lone surrogates are built in code: attribute arguments are stored as UTF-8, which would turn them into U+FFFD.
    [Test]
    public void Lone_surrogates_are_rejected_in_every_part()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Jid.TryParse("\uD800@example.com", out _), Is.False);
            Assert.That(Jid.TryParse("juliet@example.com/a\uDC00", out _), Is.False);
            Assert.That(Jid.TryParse("juliet@exa\uD800mple.com", out _), Is.False);
            Assert.That(() => Jid.Create("juliet", "example.com", "\uD83D"), Throws.TypeOf<JidFormatException>());
        });
    }

    [TestCase(1023, true, TestName = "Localpart_of_1023_octets_is_accepted")]
    [TestCase(1024, false, TestName = "Localpart_of_1024_octets_is_rejected")]
    public void Localpart_length_is_limited_in_octets(int length, bool valid)
    {
        Assert.That(Jid.TryParse(new string('a', length) + "@example.com", out _), Is.EqualTo(valid));
    }

    [Test]
    public void Localpart_limit_counts_utf8_octets_not_characters()
    {
        // 512 two-octet characters are 1024 octets.
        Assert.That(Jid.TryParse(new string('\u00E9', 512) + "@example.com", out _), Is.False);
        Assert.That(Jid.TryParse(new string('\u00E9', 511) + "@example.com", out _), Is.True);
    }

    [Test]
    public void Resource_length_is_limited_to_1023_octets()
    {
        Assert.That(Jid.TryParse("juliet@example.com/" + A1023, out var jid), Is.True);
        Assert.That(jid!.Resource, Has.Length.EqualTo(1023));
        Assert.That(Jid.TryParse("juliet@example.com/" + A1024, out _), Is.False);
        Assert.That(Jid.TryParse("juliet@example.com/" + new string('\u00E9', 512), out _), Is.False);
    }

    [Test]
    public void Domain_labels_are_limited_to_63_octets()
    {
        Assert.That(Jid.TryParse(new string('a', 63) + ".com", out _), Is.True);
        Assert.That(Jid.TryParse(new string('a', 64) + ".com", out _), Is.False);
    }

    [Test]
    public void Very_long_input_is_rejected_without_error()
    {
        Assert.That(Jid.TryParse(new string('\u00E9', 100_000) + "@example.com", out _), Is.False);
        Assert.That(Jid.TryParse("example.com/" + new string('x', 100_000), out _), Is.False);
    }

    [Test]
    public void Canonical_input_becomes_the_cached_string_without_copying()
    {
        var input = "juliet@example.com/balcony";
        var jid = Jid.Parse(input);
        Assert.That(jid.ToString(), Is.SameAs(input));
    }

    [Test]
    public void Parse_of_canonical_ascii_allocates_only_the_parts_and_the_jid()
    {
        var input = "juliet@example.com/balcony";
        Jid.Parse(input);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
            Jid.Parse(input);
        var allocated = (GC.GetAllocatedBytesForCurrentThread() - before) / 100;
        // Three part strings (about 40-50 bytes each) and the Jid object (about 56 bytes).
        Assert.That(allocated, Is.LessThanOrEqualTo(200));
    }

    [Test]
    public void ToString_is_built_once_and_cached()
    {
        var jid = Jid.Parse("Juliet@Example.com/Balcony");
        Assert.That(jid.ToString(), Is.EqualTo("juliet@example.com/Balcony"));
        Assert.That(jid.ToString(), Is.SameAs(jid.ToString()));
    }

    [Test]
    public void Bare_drops_the_resource_and_is_cached()
    {
        var full = Jid.Parse("juliet@example.com/balcony");
        var bare = full.Bare;
        Assert.Multiple(() =>
        {
            Assert.That(bare.ToString(), Is.EqualTo("juliet@example.com"));
            Assert.That(bare.IsBare, Is.True);
            Assert.That(full.IsBare, Is.False);
            Assert.That(full.IsFull, Is.True);
            Assert.That(full.Bare, Is.SameAs(bare));
            Assert.That(bare.Bare, Is.SameAs(bare));
        });
    }

    [Test]
    public void Bare_of_a_bare_jid_is_the_same_instance()
    {
        var bare = Jid.Parse("juliet@example.com");
        Assert.That(bare.Bare, Is.SameAs(bare));
    }

    [Test]
    public void IsDomain_is_true_only_without_localpart_and_resource()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Jid.Parse("example.com").IsDomain, Is.True);
            Assert.That(Jid.Parse("example.com/r").IsDomain, Is.False);
            Assert.That(Jid.Parse("juliet@example.com").IsDomain, Is.False);
        });
    }

    [Test]
    public void WithResource_enforces_the_resource()
    {
        var bare = Jid.Parse("juliet@example.com");
        var full = bare.WithResource("e\u0301 Phone");
        Assert.Multiple(() =>
        {
            Assert.That(full.ToString(), Is.EqualTo("juliet@example.com/\u00E9 Phone"));
            Assert.That(full.Bare, Is.SameAs(bare));
            Assert.That(() => bare.WithResource(""), Throws.TypeOf<JidFormatException>());
            Assert.That(() => bare.WithResource("a\u0000"), Throws.TypeOf<JidFormatException>());
        });
    }

    [Test]
    public void WithResource_null_returns_the_bare_jid()
    {
        var full = Jid.Parse("juliet@example.com/balcony");
        Assert.That(full.WithResource(null), Is.SameAs(full.Bare));
    }

    [Test]
    public void WithResource_replaces_an_existing_resource()
    {
        var full = Jid.Parse("juliet@example.com/balcony");
        var other = full.WithResource("garden");
        Assert.Multiple(() =>
        {
            Assert.That(other.ToString(), Is.EqualTo("juliet@example.com/garden"));
            Assert.That(full.WithResource("balcony"), Is.SameAs(full));
            Assert.That(other.BareEquals(full), Is.True);
        });
    }

    [TestCase("Juliet", "Example.COM", "Balcony", "juliet@example.com/Balcony", TestName = "Create_prepares_every_part")]
    [TestCase(null, "example.com", null, "example.com", TestName = "Create_without_localpart_or_resource_gives_a_domain_jid")]
    [TestCase("juliet", "example.com", null, "juliet@example.com", TestName = "Create_without_resource_gives_a_bare_jid")]
    [TestCase(null, "example.com", "a/b@c", "example.com/a/b@c", TestName = "Create_allows_separators_in_the_resource")]
    public void Create_builds_canonical_jids(string? local, string domain, string? resource, string expected)
    {
        var jid = Jid.Create(local, domain, resource);
        Assert.That(jid.ToString(), Is.EqualTo(expected));
        Assert.That(jid, Is.EqualTo(Jid.Parse(expected)));
    }

    [TestCase("", "example.com", null, TestName = "Create_rejects_an_empty_localpart")]
    [TestCase("a@b", "example.com", null, TestName = "Create_rejects_an_at_sign_in_the_localpart")]
    [TestCase("a/b", "example.com", null, TestName = "Create_rejects_a_slash_in_the_localpart")]
    [TestCase("juliet", "", null, TestName = "Create_rejects_an_empty_domain")]
    [TestCase("juliet", "example.com/x", null, TestName = "Create_rejects_a_slash_in_the_domain")]
    [TestCase("juliet", "a@example.com", null, TestName = "Create_rejects_an_at_sign_in_the_domain")]
    [TestCase("juliet", "example.com", "", TestName = "Create_rejects_an_empty_resource")]
    public void Create_rejects_invalid_parts(string? local, string domain, string? resource)
    {
        Assert.That(() => Jid.Create(local, domain, resource), Throws.TypeOf<JidFormatException>());
        Assert.That(Jid.TryCreate(local, domain, resource, out _), Is.False);
    }

    [Test]
    public void Null_input_is_an_argument_error_for_Parse_and_false_for_TryParse()
    {
        Assert.That(() => Jid.Parse(null!), Throws.ArgumentNullException);
        Assert.That(Jid.TryParse(null, out var jid), Is.False);
        Assert.That(jid, Is.Null);
    }

    [Test]
    public void JidFormatException_is_a_FormatException()
    {
        Assert.That(() => Jid.Parse("@"), Throws.InstanceOf<FormatException>());
    }

    [TestCase("Juliet@Example.com/r", "juliet@example.com/r", TestName = "Jids_differing_only_in_localpart_and_domain_case_are_equal")]
    [TestCase("juliet@xn--mnchen-3ya.de", "juliet@M\u00FCnchen.de", TestName = "Jids_with_a_label_and_u_label_domains_are_equal")]
    [TestCase("juliet@example.com.", "juliet@example.com", TestName = "Jids_differing_by_a_trailing_dot_are_equal")]
    [TestCase("\uFF4A@example.com", "j@example.com", TestName = "Jids_differing_by_width_are_equal")]
    [TestCase("[::1]", "[0::1]", TestName = "Equal_ipv6_literals_are_equal")]
    public void Equivalent_jids_are_equal_and_hash_alike(string a, string b)
    {
        var left = Jid.Parse(a);
        var right = Jid.Parse(b);
        Assert.Multiple(() =>
        {
            Assert.That(left.Equals(right), Is.True);
            Assert.That(left == right, Is.True);
            Assert.That(left != right, Is.False);
            Assert.That(left.Equals((object)right), Is.True);
            Assert.That(left.GetHashCode(), Is.EqualTo(right.GetHashCode()));
            Assert.That(left.ToString(), Is.EqualTo(right.ToString()));
        });
    }

    [TestCase("juliet@example.com/r", "juliet@example.com/R", TestName = "Resources_differing_in_case_are_not_equal")]
    [TestCase("juliet@example.com/r", "juliet@example.com", TestName = "Full_and_bare_jids_are_not_equal")]
    [TestCase("juliet@example.com", "example.com", TestName = "Bare_and_domain_jids_are_not_equal")]
    [TestCase("fussball@example.com", "fu\u00DFball@example.com", TestName = "Sharp_s_is_not_folded_to_ss")]
    [TestCase("example.com/a@b", "a@b", TestName = "Resource_and_domain_split_is_part_of_identity")]
    public void Different_jids_are_not_equal(string a, string b)
    {
        var left = Jid.Parse(a);
        var right = Jid.Parse(b);
        Assert.That(left == right, Is.False);
        Assert.That(left != right, Is.True);
        Assert.That(left.Equals(right), Is.False);
    }

    [Test]
    public void Null_jids_compare_as_expected()
    {
        var jid = Jid.Parse("juliet@example.com");
        Jid? none = null;
        Assert.Multiple(() =>
        {
            Assert.That(jid == none, Is.False);
            Assert.That(none == jid, Is.False);
            Assert.That(none == null, Is.True);
            Assert.That(jid != none, Is.True);
            Assert.That(jid.Equals(none), Is.False);
            Assert.That(jid.BareEquals(none), Is.False);
        });
    }

    [Test]
    public void Jids_work_as_dictionary_keys()
    {
        var set = new HashSet<Jid> { Jid.Parse("juliet@example.com/a"), Jid.Parse("JULIET@example.com/a"), Jid.Create("juliet", "example.com", "a") };
        Assert.That(set, Has.Count.EqualTo(1));
        Assert.That(set.Contains(Jid.Parse("juliet@EXAMPLE.com/a")), Is.True);
    }

    [Test]
    public void Parse_of_ToString_round_trips()
    {
        foreach (var s in new[] { "Juliet@Example.com/Balcony", "\u03A3@example.com/\u265A", "juliet@xn--mnchen-3ya.de/a@b", "[::1]/x" })
        {
            var jid = Jid.Parse(s);
            Assert.That(Jid.Parse(jid.ToString()), Is.EqualTo(jid));
            Assert.That(Jid.Parse(jid.ToString()).ToString(), Is.EqualTo(jid.ToString()));
        }
    }

    [Test]
    public void Precis_class_and_namespace_are_usable_together()
    {
        Assert.That(Precis.EnforceUsernameCaseMapped("Juliet"), Is.EqualTo(Jid.Parse("Juliet@example.com").Local));
    }
}
