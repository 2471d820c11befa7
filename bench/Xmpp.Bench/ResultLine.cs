using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Xmpp.Bench;

/// One scenario's outcome, printed as a single JSON line on stdout for scripts to pick up.
public sealed class ResultLine
{
    private readonly List<(string Key, object Value)> _fields = [];

    public ResultLine(string scenario, string server)
    {
        Add("scenario", scenario);
        Add("server", server);
    }

    public ResultLine Add(string key, object value)
    {
        _fields.RemoveAll(f => f.Key == key);
        _fields.Add((key, value));
        return this;
    }

    public object? this[string key] => _fields.FirstOrDefault(f => f.Key == key).Value;

    public double Number(string key) => Convert.ToDouble(this[key], CultureInfo.InvariantCulture);

    public override string ToString()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            foreach (var (key, value) in _fields)
            {
                switch (value)
                {
                    case string s: w.WriteString(key, s); break;
                    case bool b: w.WriteBoolean(key, b); break;
                    case int i: w.WriteNumber(key, i); break;
                    case long l: w.WriteNumber(key, l); break;
                    case double d when double.IsFinite(d): w.WriteNumber(key, Math.Round(d, 3)); break;
                    case double: w.WriteNull(key); break;
                    default: w.WriteString(key, Convert.ToString(value, CultureInfo.InvariantCulture)); break;
                }
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}
