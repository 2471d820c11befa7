using Xmpp.Protocol.Sasl;

namespace Xmpp.Tests.Protocol;

public class SaslPrepTests
{
    // RFC 4013 §3 examples 1-5, then further mappings.
    [TestCase("I\u00ADX", "IX", TestName = "Soft_hyphen_is_mapped_to_nothing")]
    [TestCase("user", "user", TestName = "Plain_ascii_is_unchanged")]
    [TestCase("USER", "USER", TestName = "Case_is_preserved")]
    [TestCase("\u00AA", "a", TestName = "Feminine_ordinal_is_normalized_to_a")]
    [TestCase("\u2168", "IX", TestName = "Roman_numeral_nine_is_normalized_to_IX")]
    [TestCase("a\u00A0b", "a b", TestName = "No_break_space_becomes_ascii_space")]
    [TestCase("a\u3000b", "a b", TestName = "Ideographic_space_becomes_ascii_space")]
    [TestCase("\u200Bab\uFEFF", "ab", TestName = "Zero_width_characters_are_mapped_to_nothing")]
    [TestCase("\uFF21\uFF22", "AB", TestName = "Fullwidth_letters_are_normalized")]
    [TestCase("\u212B", "\u00C5", TestName = "Angstrom_sign_is_normalized_to_a_ring")]
    [TestCase("p\u00E4ssw\u00F6rd", "p\u00E4ssw\u00F6rd", TestName = "Latin_letters_with_diacritics_are_kept")]
    [TestCase("\U0001F600x", "\U0001F600x", TestName = "Emoji_outside_the_prohibited_tables_are_kept")]
    [TestCase("", "", TestName = "Empty_string_stays_empty")]
    [TestCase("\u0627\u0628", "\u0627\u0628", TestName = "Arabic_text_passes_the_bidi_check")]
    [TestCase("\u05D0\u05D1", "\u05D0\u05D1", TestName = "Hebrew_text_passes_the_bidi_check")]
    [TestCase("\u0627\u0031\u0628", "\u0627\u0031\u0628", TestName = "Digits_inside_right_to_left_text_are_allowed")]
    public void SaslPrep_maps_and_normalizes(string input, string expected)
    {
        Assert.That(SaslPrep.Prepare(input), Is.EqualTo(expected));
    }

    // RFC 4013 §3 examples 6 and 7, then one row per prohibited table.
    [TestCase("\u0007", TestName = "Ascii_control_is_prohibited")]
    [TestCase("\u0627\u0031", TestName = "Right_to_left_text_ending_in_a_digit_fails_the_bidi_check")]
    [TestCase("a\u0000b", TestName = "Nul_is_prohibited")]
    [TestCase("a\u007Fb", TestName = "Delete_is_prohibited")]
    [TestCase("a\u0085b", TestName = "Non_ascii_control_is_prohibited")]
    [TestCase("a\uE000b", TestName = "Private_use_character_is_prohibited")]
    [TestCase("a\U000F0000b", TestName = "Supplementary_private_use_character_is_prohibited")]
    [TestCase("a\uFDD0b", TestName = "Non_character_is_prohibited")]
    [TestCase("a\uFFFEb", TestName = "Non_character_fffe_is_prohibited")]
    [TestCase("a\U0001FFFFb", TestName = "Supplementary_non_character_is_prohibited")]
    [TestCase("a\uFFFDb", TestName = "Replacement_character_is_prohibited")]
    [TestCase("a\u2FF0b", TestName = "Ideographic_description_character_is_prohibited")]
    [TestCase("a\u202Eb", TestName = "Bidi_override_is_prohibited")]
    [TestCase("a\U000E0041b", TestName = "Tag_character_is_prohibited")]
    [TestCase("\u0627a\u0628", TestName = "Mixed_right_to_left_and_left_to_right_letters_fail_the_bidi_check")]
    [TestCase("1\u0627", TestName = "Right_to_left_text_starting_with_a_digit_fails_the_bidi_check")]
    public void SaslPrep_rejects(string input)
    {
        Assert.That(() => SaslPrep.Prepare(input), Throws.TypeOf<FormatException>());
    }

    [Test]
    public void SaslPrep_rejects_unpaired_surrogates()
    {
        Assert.That(() => SaslPrep.Prepare("a" + '\uD800' + "b"), Throws.TypeOf<FormatException>());
        Assert.That(() => SaslPrep.Prepare("a" + '\uDC00'), Throws.TypeOf<FormatException>());
    }

    [Test]
    public void SaslPrep_makes_roman_numeral_match_its_ascii_spelling()
    {
        // RFC 4013 §3: example 5 "will match #1".
        Assert.That(SaslPrep.Prepare("\u2168"), Is.EqualTo(SaslPrep.Prepare("I\u00ADX")));
    }
}
