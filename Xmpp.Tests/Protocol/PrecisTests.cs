using Xmpp.Protocol.Precis;

namespace Xmpp.Tests.Protocol;

public class PrecisTests
{
    [TestCase("juliet", "juliet", TestName = "Username_lowercase_ascii_is_unchanged")]
    [TestCase("Juliet", "juliet", TestName = "Username_ascii_is_lowercased")]
    [TestCase("\uFF21\uFF22\uFF23", "abc", TestName = "Username_fullwidth_letters_are_width_mapped")]
    [TestCase("\uFF76\uFF9E", "\u30AC", TestName = "Username_halfwidth_katakana_is_width_mapped_and_composed")]
    [TestCase("\u00DF", "\u00DF", TestName = "Username_sharp_s_stays")]
    [TestCase("\u0130", "i\u0307", TestName = "Username_dotted_capital_i_lowercases_to_i_with_dot_above")]
    [TestCase("\u03A3\u0391\u03A3", "\u03C3\u03B1\u03C2", TestName = "Username_word_final_sigma_is_mapped_to_final_form")]
    [TestCase("\u212B", "\u00E5", TestName = "Username_angstrom_sign_becomes_a_with_ring")]
    [TestCase("e\u0301", "\u00E9", TestName = "Username_is_nfc_normalized")]
    [TestCase("\u1100\u1161", "\uAC00", TestName = "Username_conjoining_jamo_compose_into_a_syllable")]
    [TestCase("l\u00B7l", "l\u00B7l", TestName = "Username_catalan_middle_dot_between_ls_is_allowed")]
    [TestCase("\u0375\u03B1", "\u0375\u03B1", TestName = "Username_greek_keraia_before_greek_is_allowed")]
    [TestCase("\u05D0\u05F3", "\u05D0\u05F3", TestName = "Username_hebrew_geresh_after_hebrew_is_allowed")]
    [TestCase("\u30AB\u30FB\u30CA", "\u30AB\u30FB\u30CA", TestName = "Username_katakana_middle_dot_with_katakana_is_allowed")]
    [TestCase("\u0915\u094D\u200D\u0937", "\u0915\u094D\u200D\u0937", TestName = "Username_zero_width_joiner_after_virama_is_allowed")]
    [TestCase("\u0645\u06CC\u200C\u062E", "\u0645\u06CC\u200C\u062E", TestName = "Username_zero_width_non_joiner_between_arabic_letters_is_allowed")]
    [TestCase("\u0627\u0661\u0662", "\u0627\u0661\u0662", TestName = "Username_arabic_indic_digits_alone_are_allowed")]
    [TestCase("\u05D0\u05D11", "\u05D0\u05D11", TestName = "Username_right_to_left_text_may_end_in_a_digit")]
    [TestCase("\U00010400", "\U00010428", TestName = "Username_supplementary_plane_letter_is_lowercased")]
    public void UsernameCaseMapped_enforces(string input, string expected)
    {
        Assert.That(Precis.EnforceUsernameCaseMapped(input), Is.EqualTo(expected));
    }

    [TestCase("", TestName = "Username_empty_is_rejected")]
    [TestCase("a b", TestName = "Username_space_is_rejected")]
    [TestCase("\u3000a", TestName = "Username_ideographic_space_is_rejected_after_width_mapping")]
    [TestCase("\u265A", TestName = "Username_symbol_is_rejected")]
    [TestCase("\u2163", TestName = "Username_compatibility_character_is_rejected")]
    [TestCase("\u00AA", TestName = "Username_feminine_ordinal_is_rejected")]
    [TestCase("\u01C5", TestName = "Username_titlecase_letter_is_rejected")]
    [TestCase("a\u200Db", TestName = "Username_zero_width_joiner_without_virama_is_rejected")]
    [TestCase("ab\u200C", TestName = "Username_trailing_zero_width_non_joiner_is_rejected")]
    [TestCase("a\u00B7b", TestName = "Username_middle_dot_outside_l_l_is_rejected")]
    [TestCase("\u0375a", TestName = "Username_greek_keraia_before_latin_is_rejected")]
    [TestCase("a\u05F3", TestName = "Username_hebrew_geresh_after_latin_is_rejected")]
    [TestCase("a\u30FBb", TestName = "Username_katakana_middle_dot_without_kana_or_han_is_rejected")]
    [TestCase("\u0627\u0660\u06F0", TestName = "Username_mixed_arabic_indic_digit_sets_are_rejected")]
    [TestCase("\u0628\u0640\u0628", TestName = "Username_arabic_tatweel_is_rejected")]
    [TestCase("\u1100", TestName = "Username_lone_old_hangul_jamo_is_rejected")]
    [TestCase("a\uFFFF", TestName = "Username_noncharacter_is_rejected")]
    [TestCase("a\u00ADb", TestName = "Username_default_ignorable_is_rejected")]
    [TestCase("a\u05D0", TestName = "Username_left_to_right_text_with_hebrew_fails_the_bidi_rule")]
    [TestCase("1\u05D0", TestName = "Username_right_to_left_text_starting_with_a_digit_fails_the_bidi_rule")]
    [TestCase("\u0627\u0661\u06F1", TestName = "Username_right_to_left_text_mixing_digit_kinds_fails_the_bidi_rule")]
    public void UsernameCaseMapped_rejects(string input)
    {
        Assert.That(() => Precis.EnforceUsernameCaseMapped(input), Throws.InstanceOf<FormatException>());
        Assert.That(Precis.TryEnforceUsernameCaseMapped(input, out _), Is.False);
    }

    [TestCase("Correct Horse Battery Staple", "Correct Horse Battery Staple", TestName = "OpaqueString_ascii_with_spaces_is_unchanged")]
    [TestCase("\u03C0\u00DF\u00E5", "\u03C0\u00DF\u00E5", TestName = "OpaqueString_non_ascii_letters_are_kept")]
    [TestCase("JULIET", "JULIET", TestName = "OpaqueString_keeps_case")]
    [TestCase("\u00A0a\u2002b", " a b", TestName = "OpaqueString_maps_non_ascii_spaces_to_ascii_space")]
    [TestCase("e\u0301", "\u00E9", TestName = "OpaqueString_is_nfc_normalized")]
    [TestCase("\uFF21\uFF22", "\uFF21\uFF22", TestName = "OpaqueString_keeps_fullwidth_characters")]
    [TestCase("\u2163\u265A", "\u2163\u265A", TestName = "OpaqueString_allows_compatibility_characters_and_symbols")]
    [TestCase("\U0001F600", "\U0001F600", TestName = "OpaqueString_allows_emoji")]
    [TestCase("  ", "  ", TestName = "OpaqueString_allows_only_spaces")]
    public void OpaqueString_enforces(string input, string expected)
    {
        Assert.That(Precis.EnforceOpaqueString(input), Is.EqualTo(expected));
    }

    [TestCase("", TestName = "OpaqueString_empty_is_rejected")]
    [TestCase("a\u0007", TestName = "OpaqueString_control_character_is_rejected")]
    [TestCase("a\u200Bb", TestName = "OpaqueString_zero_width_space_is_rejected")]
    [TestCase("\uE000", TestName = "OpaqueString_private_use_is_rejected")]
    [TestCase("a\u2029", TestName = "OpaqueString_paragraph_separator_is_rejected")]
    [TestCase("a\u202E", TestName = "OpaqueString_bidi_override_is_rejected")]
    public void OpaqueString_rejects(string input)
    {
        Assert.That(() => Precis.EnforceOpaqueString(input), Throws.InstanceOf<FormatException>());
        Assert.That(Precis.TryEnforceOpaqueString(input, out _), Is.False);
    }

    [TestCase("Romeo", "Romeo", TestName = "Nickname_keeps_case")]
    [TestCase("  Foo   Bar  ", "Foo Bar", TestName = "Nickname_trims_and_collapses_spaces")]
    [TestCase("\u00A0Foo\u3000Bar\u2003", "Foo Bar", TestName = "Nickname_maps_non_ascii_spaces_before_trimming")]
    [TestCase("\u2163", "IV", TestName = "Nickname_applies_nfkc")]
    [TestCase("\uFF21\uFF22", "AB", TestName = "Nickname_width_maps_through_nfkc")]
    [TestCase("\u265A King", "\u265A King", TestName = "Nickname_allows_symbols")]
    [TestCase("\u03A3", "\u03A3", TestName = "Nickname_keeps_capital_sigma")]
    public void Nickname_enforces(string input, string expected)
    {
        Assert.That(Precis.EnforceNickname(input), Is.EqualTo(expected));
    }

    [TestCase("", TestName = "Nickname_empty_is_rejected")]
    [TestCase("   ", TestName = "Nickname_only_spaces_is_rejected")]
    [TestCase("a\u0007", TestName = "Nickname_control_character_is_rejected")]
    [TestCase("a\u200Bb", TestName = "Nickname_zero_width_space_is_rejected")]
    public void Nickname_rejects(string input)
    {
        Assert.That(() => Precis.EnforceNickname(input), Throws.InstanceOf<FormatException>());
        Assert.That(Precis.TryEnforceNickname(input, out _), Is.False);
    }

    [TestCase("Foo Bar", "foo  bar", true, TestName = "Nicknames_differing_in_case_and_spacing_match")]
    [TestCase("\u03A3", "\u03C3", true, TestName = "Nicknames_differing_in_greek_case_match")]
    [TestCase("\u2163", "iv", true, TestName = "Nicknames_equal_after_nfkc_and_case_mapping_match")]
    [TestCase("Romeo", "Juliet", false, TestName = "Different_nicknames_do_not_match")]
    [TestCase("", "", false, TestName = "Invalid_nicknames_never_match")]
    public void Nickname_comparison_follows_rfc8266(string a, string b, bool match)
    {
        Assert.That(Precis.NicknamesMatch(a, b), Is.EqualTo(match));
    }

    [Test]
    public void Nickname_comparison_key_is_lowercase()
    {
        Assert.That(Precis.NicknameComparisonKey(" Foo\u00A0Bar "), Is.EqualTo("foo bar"));
    }

    [TestCase("example.com", "example.com", TestName = "Domain_canonical_ascii_is_unchanged")]
    [TestCase("Example.COM", "example.com", TestName = "Domain_ascii_is_lowercased")]
    [TestCase("example.com.", "example.com", TestName = "Domain_trailing_dot_is_removed")]
    [TestCase("\uFF45\uFF58\uFF41\uFF4D\uFF50\uFF4C\uFF45\uFF0E\uFF43\uFF4F\uFF4D", "example.com", TestName = "Domain_fullwidth_is_width_mapped")]
    [TestCase("xn--mnchen-3ya.de", "m\u00FCnchen.de", TestName = "Domain_a_label_becomes_u_label")]
    [TestCase("XN--MNCHEN-3YA.DE", "m\u00FCnchen.de", TestName = "Domain_uppercase_a_label_becomes_u_label")]
    [TestCase("M\u00DCNCHEN.de", "m\u00FCnchen.de", TestName = "Domain_unicode_is_case_folded")]
    [TestCase("mu\u0308nchen.de", "m\u00FCnchen.de", TestName = "Domain_is_nfc_normalized")]
    [TestCase("\u4F8B\u3048\u3002\u30C6\u30B9\u30C8", "\u4F8B\u3048.\u30C6\u30B9\u30C8", TestName = "Domain_ideographic_full_stop_separates_labels")]
    [TestCase("127.0.0.1", "127.0.0.1", TestName = "Domain_ipv4_literal_is_accepted")]
    [TestCase("[::1]", "[::1]", TestName = "Domain_ipv6_literal_is_accepted")]
    [TestCase("[::FFFF:7F00:1]", "[::ffff:127.0.0.1]", TestName = "Domain_ipv6_literal_is_canonicalized")]
    [TestCase("\u05D0\u05D1.com", "\u05D0\u05D1.com", TestName = "Domain_right_to_left_label_passes_the_bidi_rule")]
    [TestCase("a-b.c0m", "a-b.c0m", TestName = "Domain_inner_hyphen_and_digits_are_allowed")]
    public void PrepareDomain_prepares(string input, string expected)
    {
        Assert.That(Precis.PrepareDomain(input), Is.EqualTo(expected));
    }

    [TestCase("", TestName = "Domain_empty_is_rejected")]
    [TestCase(".", TestName = "Domain_only_a_dot_is_rejected")]
    [TestCase("a..b", TestName = "Domain_empty_label_is_rejected")]
    [TestCase(".example.com", TestName = "Domain_leading_dot_is_rejected")]
    [TestCase("-a.com", TestName = "Domain_leading_hyphen_is_rejected")]
    [TestCase("ab--c.com", TestName = "Domain_hyphens_in_third_and_fourth_position_are_rejected")]
    [TestCase("a_b.com", TestName = "Domain_underscore_is_rejected")]
    [TestCase("a b", TestName = "Domain_space_is_rejected")]
    [TestCase("exa\u0000mple.com", TestName = "Domain_nul_is_rejected")]
    [TestCase("xn--zz.com", TestName = "Domain_bad_punycode_is_rejected")]
    [TestCase("[::1", TestName = "Domain_unclosed_bracket_is_rejected")]
    [TestCase("[]", TestName = "Domain_empty_brackets_are_rejected")]
    [TestCase("[::1%1]", TestName = "Domain_ipv6_zone_is_rejected")]
    [TestCase("[1.2.3.4]", TestName = "Domain_bracketed_ipv4_is_rejected")]
    [TestCase("a\u05D0.com", TestName = "Domain_mixed_direction_label_fails_the_bidi_rule")]
    public void PrepareDomain_rejects(string input)
    {
        Assert.That(() => Precis.PrepareDomain(input), Throws.InstanceOf<FormatException>());
        Assert.That(Precis.TryPrepareDomain(input, out _), Is.False);
    }

    [Test]
    public void Domain_length_limits_follow_dns()
    {
        var label63 = new string('a', 63);
        var name253 = string.Join('.', label63, label63, label63, new string('a', 61));
        Assert.Multiple(() =>
        {
            Assert.That(Precis.TryPrepareDomain(label63 + ".com", out _), Is.True);
            Assert.That(Precis.TryPrepareDomain(new string('a', 64) + ".com", out _), Is.False);
            Assert.That(Precis.TryPrepareDomain(name253, out _), Is.True);
            Assert.That(Precis.TryPrepareDomain(name253 + ".", out _), Is.True);
            Assert.That(Precis.TryPrepareDomain(name253 + "a", out _), Is.False);
            Assert.That(Precis.TryPrepareDomain("\u00FC" + new string('a', 60) + ".com", out _), Is.False, "the A-label is longer than 63 octets");
        });
    }

    // The ASCII fast path must give exactly what the full UTS #46 path gives for every name it accepts.
    [TestCase("example.com")]
    [TestCase("a")]
    [TestCase("a-b-c.d-e")]
    [TestCase("ab-c.com")]
    [TestCase("127.0.0.1")]
    [TestCase("0.0")]
    [TestCase("conference.example.org")]
    public void Domain_fast_path_agrees_with_idna(string name)
    {
        Assert.That(Precis.PrepareDomain(name), Is.SameAs(name));
        Assert.That(DomainPreparation.PrepareWithIdna(name, out _), Is.EqualTo(name));
    }

    [TestCase(0x61, nameof(DerivedProperty.PValid), TestName = "Ascii_letter_is_pvalid")]
    [TestCase(0x7E, nameof(DerivedProperty.PValid), TestName = "Ascii_tilde_is_pvalid")]
    [TestCase(0xDF, nameof(DerivedProperty.PValid), TestName = "Sharp_s_is_pvalid_by_exception")]
    [TestCase(0x03C2, nameof(DerivedProperty.PValid), TestName = "Final_sigma_is_pvalid_by_exception")]
    [TestCase(0x0301, nameof(DerivedProperty.PValid), TestName = "Combining_mark_is_pvalid")]
    [TestCase(0x4E2D, nameof(DerivedProperty.PValid), TestName = "Han_ideograph_is_pvalid")]
    [TestCase(0x20, nameof(DerivedProperty.FreePValid), TestName = "Ascii_space_is_freeform_only")]
    [TestCase(0x2665, nameof(DerivedProperty.FreePValid), TestName = "Symbol_is_freeform_only")]
    [TestCase(0x2163, nameof(DerivedProperty.FreePValid), TestName = "Compatibility_character_is_freeform_only")]
    [TestCase(0x00BF, nameof(DerivedProperty.FreePValid), TestName = "Punctuation_is_freeform_only")]
    [TestCase(0x200C, nameof(DerivedProperty.ContextJ), TestName = "Zero_width_non_joiner_is_contextj")]
    [TestCase(0x00B7, nameof(DerivedProperty.ContextO), TestName = "Middle_dot_is_contexto")]
    [TestCase(0x0663, nameof(DerivedProperty.ContextO), TestName = "Arabic_indic_digit_is_contexto")]
    [TestCase(0x07, nameof(DerivedProperty.Disallowed), TestName = "Control_is_disallowed")]
    [TestCase(0x0640, nameof(DerivedProperty.Disallowed), TestName = "Tatweel_is_disallowed_by_exception")]
    [TestCase(0x1100, nameof(DerivedProperty.Disallowed), TestName = "Old_hangul_jamo_is_disallowed")]
    [TestCase(0x00AD, nameof(DerivedProperty.Disallowed), TestName = "Default_ignorable_is_disallowed")]
    [TestCase(0xFDD0, nameof(DerivedProperty.Disallowed), TestName = "Noncharacter_is_disallowed")]
    [TestCase(0xE000, nameof(DerivedProperty.Disallowed), TestName = "Private_use_is_disallowed")]
    [TestCase(0x2028, nameof(DerivedProperty.Disallowed), TestName = "Line_separator_is_disallowed")]
    [TestCase(0x0378, nameof(DerivedProperty.Unassigned), TestName = "Unassigned_code_point_is_unassigned")]
    public void Derived_property_follows_rfc8264_section_9(int codePoint, string expected)
    {
        Assert.That(StringClasses.GetDerivedProperty(codePoint).ToString(), Is.EqualTo(expected));
    }

    [Test]
    public void Enforcement_is_idempotent()
    {
        foreach (var s in new[] { "\u0130stanbul", "\uFF21\u0301", "\u03A3\u039F\u03A3", "e\u0301\u0327" })
        {
            var once = Precis.EnforceUsernameCaseMapped(s);
            Assert.That(Precis.EnforceUsernameCaseMapped(once), Is.EqualTo(once));
        }
        foreach (var s in new[] { " \u00A8 x", "\u2474  \u3000a", "\uFB01 " })
        {
            var once = Precis.EnforceNickname(s);
            Assert.That(Precis.EnforceNickname(once), Is.EqualTo(once));
        }
    }

    // Built in code: attribute arguments are stored as UTF-8, which would turn a lone surrogate into U+FFFD.
    [Test]
    public void Lone_surrogates_are_rejected_by_every_profile()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Precis.TryEnforceUsernameCaseMapped("a\uD83D", out _), Is.False);
            Assert.That(Precis.TryEnforceOpaqueString("a\uDC00", out _), Is.False);
            Assert.That(Precis.TryEnforceNickname("\uDC00b", out _), Is.False);
            Assert.That(Precis.TryPrepareDomain("a\uD800.com", out _), Is.False);
        });
    }

    [Test]
    public void Null_arguments_are_argument_errors_and_false_for_try_methods()
    {
        Assert.Multiple(() =>
        {
            Assert.That(() => Precis.EnforceOpaqueString(null!), Throws.ArgumentNullException);
            Assert.That(() => Precis.PrepareDomain(null!), Throws.ArgumentNullException);
            Assert.That(Precis.TryEnforceUsernameCaseMapped(null, out _), Is.False);
            Assert.That(Precis.TryEnforceNickname(null, out _), Is.False);
            Assert.That(Precis.NicknamesMatch(null, "a"), Is.False);
        });
    }
}
