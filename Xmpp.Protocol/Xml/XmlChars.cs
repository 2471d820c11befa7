namespace Xmpp.Protocol.Xml;

// Character classes of XML 1.0 (Fifth Edition), §2.2 (Char) and §2.3 (NameStartChar, NameChar).
internal static class XmlChars
{
    public static bool IsChar(int c) =>
        c is 0x9 or 0xA or 0xD
        || c is >= 0x20 and <= 0xD7FF
        || c is >= 0xE000 and <= 0xFFFD
        || c is >= 0x10000 and <= 0x10FFFF;

    public static bool IsNameStartChar(int c) =>
        c is >= 'a' and <= 'z' || c is >= 'A' and <= 'Z' || c is '_' or ':'
        || c is >= 0xC0 and <= 0xD6
        || c is >= 0xD8 and <= 0xF6
        || c is >= 0xF8 and <= 0x2FF
        || c is >= 0x370 and <= 0x37D
        || c is >= 0x37F and <= 0x1FFF
        || c is 0x200C or 0x200D
        || c is >= 0x2070 and <= 0x218F
        || c is >= 0x2C00 and <= 0x2FEF
        || c is >= 0x3001 and <= 0xD7FF
        || c is >= 0xF900 and <= 0xFDCF
        || c is >= 0xFDF0 and <= 0xFFFD
        || c is >= 0x10000 and <= 0xEFFFF;

    public static bool IsNameChar(int c) =>
        IsNameStartChar(c)
        || c is >= '0' and <= '9' || c is '-' or '.' or 0xB7
        || c is >= 0x300 and <= 0x36F
        || c is 0x203F or 0x2040;

    // ASCII bytes that may start a name; bytes of multi-byte sequences are accepted here and checked after decoding.
    public static bool IsNameStartByte(byte b) =>
        b is >= (byte)'a' and <= (byte)'z' || b is >= (byte)'A' and <= (byte)'Z' || b is (byte)'_' or (byte)':' || b >= 0x80;

    public static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';
}
