using System.Net;

namespace Xmpp.Bench;

/// Spreads client sockets over 127.0.0.0/8 so that many connections (and the TIME_WAIT left by earlier runs) never
/// exhaust the ephemeral port range of one source address: every <see cref="PerAddress"/> connections get the next
/// address. Each run starts at a random second octet, so consecutive runs do not share addresses.
public sealed class SourceAddresses
{
    public const int PerAddress = 8000;
    private readonly bool _enabled;
    private readonly int _octet;

    public SourceAddresses(IPAddress target, bool enabled = true)
    {
        _enabled = enabled && IPAddress.IsLoopback(target) && target.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
        _octet = Random.Shared.Next(1, 255);
    }

    /// The address to bind connection number <paramref name="index"/> to, or null to let the kernel choose.
    public IPAddress? For(int index)
    {
        if (!_enabled) return null;
        int slot = index / PerAddress;
        return new IPAddress([127, (byte)_octet, (byte)(slot / 250), (byte)(1 + slot % 250)]);
    }
}
