namespace Xmpp.Bench;

/// Reads a server process's resident memory and CPU time from /proc (Linux).
public static class ProcessStats
{
    /// VmRSS of the process and all its descendants, in bytes (ejabberd runs in a child beam.smp).
    public static long RssBytes(int pid)
    {
        long total = 0;
        foreach (var p in WithDescendants(pid))
        {
            try
            {
                foreach (var line in File.ReadLines($"/proc/{p}/status"))
                    if (line.StartsWith("VmRSS:"))
                        total += long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
            }
            catch (IOException) { }
        }
        return total;
    }

    /// User plus system CPU seconds used so far by the process and its descendants.
    public static double CpuSeconds(int pid)
    {
        double total = 0;
        foreach (var p in WithDescendants(pid))
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{p}/stat");
                // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (clock ticks).
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                total += (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0;
            }
            catch (IOException) { }
        }
        return total;
    }

    public static IEnumerable<int> WithDescendants(int pid)
    {
        var result = new List<int> { pid };
        for (int i = 0; i < result.Count; i++)
        {
            var children = $"/proc/{result[i]}/task/{result[i]}/children";
            if (!File.Exists(children)) continue;
            try
            {
                foreach (var c in File.ReadAllText(children).Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    result.Add(int.Parse(c));
            }
            catch (IOException) { }
        }
        return result;
    }
}
