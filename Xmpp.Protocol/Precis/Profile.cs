namespace Xmpp.Protocol.Precis;

// Runs one pass of a profile's rules until the output is stable, as RFC 8264 §7 and RFC 8266 §2.2 require.
internal static class Profile
{
    public delegate string? Pass(string input, out string? error);

    // RFC 8266 §2.2: if the output is not stable after the rules are applied three more times, reject the input.
    private const int MaxPasses = 4;

    public static string? ApplyUntilStable(string s, Pass pass, out string? error)
    {
        var current = s;
        for (var i = 0; i < MaxPasses; i++)
        {
            var next = pass(current, out error);
            if (next is null)
                return null;
            if (string.Equals(next, current, StringComparison.Ordinal))
                return current;
            current = next;
        }
        error = "The string does not become stable under the profile's rules.";
        return null;
    }
}
