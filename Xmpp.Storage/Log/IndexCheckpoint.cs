namespace Xmpp.Storage.Log;

// How far the index covers its log (every record before Position is in the blocks), the last id given out by then,
// and the live records per segment (a segment with none left can go).
internal sealed record IndexCheckpoint((int Segment, long Offset) Position, long LastId, Dictionary<int, long> Live);
