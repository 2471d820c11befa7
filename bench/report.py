#!/usr/bin/env python3
"""Turns the JSON result lines of bench/compare.sh into one table: our figure, each anchor's, and the advantage
over the better anchor (>1 means ours is better, whichever way the metric points), with the issue's targets."""
import argparse
import datetime
import json
import platform
import subprocess
import sys

SERVERS = ["ours", "prosody", "ejabberd"]

# (scenario, key, label, higher_is_better, target advantage or None)
METRICS = [
    ("register", "accounts_per_s", "accounts registered/s (XEP-0077)", True, None),
    ("login", "sessions_per_s", "logins/s (TLS+SCRAM-SHA-1+bind+presence)", True, 2.0),
    ("login", "login_p99_ms", "login p99 ms", False, None),
    ("login", "server_cpu_ms_per_login", "server CPU ms per login (generator excluded)", False, 3.0),
    ("login", "failures", "login failures", False, None),
    ("idle", "rss_per_session_kb", "RSS per idle TLS session KiB", False, 2.0),
    ("idle", "idle_cpu_percent", "CPU % while idle", False, None),
    ("idle", "failures", "idle sessions failed/dropped", False, None),
    ("throughput", "max_sustained_rate", "1:1 msgs/s sustained (p99<100 ms)", True, 2.0),
    ("throughput", "p50_ms", "p50 ms at fixed rate", False, None),
    ("throughput", "p99_ms", "p99 ms at fixed rate", False, 1.0),
    ("throughput", "p999_ms", "p999 ms at fixed rate", False, None),
    ("throughput", "fixed_lost", "lost at fixed rate", False, None),
    ("receipts", "max_sustained_rate", "msgs/s sustained with receipts+markers", True, None),
    ("receipts", "p99_ms", "p99 ms at fixed rate (receipts)", False, None),
    ("receipts", "receipt_rtt_p99_ms", "receipt round trip p99 ms", False, None),
    ("federation", "max_sustained_rate", "federated 1:1 msgs/s sustained (A→B over s2s, p99<100 ms)", True, None),
    ("federation", "p50_ms", "federated p50 ms at fixed rate", False, None),
    ("federation", "p99_ms", "federated p99 ms at fixed rate", False, None),
    ("federation", "fixed_lost", "federated lost at fixed rate", False, None),
    ("offline", "store_per_s", "offline messages stored/s", True, None),
    ("offline", "drain_per_s", "offline messages drained/s", True, 2.0),
    ("offline", "exactly_once", "every offline message exactly once", True, None),
]


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return rows


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, (int, float)):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:.1f}"
        return f"{v:.3f}"
    return str(v)


def advantage(ours, anchors, higher):
    vals = [a for a in anchors if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if not isinstance(ours, (int, float)) or isinstance(ours, bool) or not vals:
        return None
    best = max(vals) if higher else min(vals)
    if best == 0 or ours == 0:
        return None
    if higher:
        return ours / best if best > 0 else None
    return best / ours if ours > 0 else None


def table(rows):
    by = {}
    for r in rows:
        scen = r.get("scenario")
        if scen == "idle":
            scen = f"idle {r.get('requested', r.get('sessions', '?'))}"
        by.setdefault(scen, {})[r.get("server")] = r
    scenarios = []
    for s in by:
        if s not in scenarios:
            scenarios.append(s)
    out = ["| scenario | metric | ours | prosody | ejabberd | ours vs better anchor | target |",
           "|---|---|---|---|---|---|---|"]
    for scen in scenarios:
        base = scen.split(" ")[0]
        for (ms, key, label, higher, target) in METRICS:
            if ms != base:
                continue
            vals = [by[scen].get(s, {}).get(key) for s in SERVERS]
            if all(v is None for v in vals):
                continue
            adv = advantage(vals[0], vals[1:], higher)
            adv_s = f"{adv:.2f}×" if adv is not None else "–"
            tgt = ""
            if target is not None and adv is not None:
                tgt = f"≥{target:g}× {'met' if adv >= target else 'short'}"
            out.append(f"| {scen} | {label} | {fmt(vals[0])} | {fmt(vals[1])} | {fmt(vals[2])} | {adv_s} | {tgt} |")
    errors = [r for r in rows if "error" in r or "first_error" in r]
    return out, errors


def federation_table(rows):
    """Each server federating with a second instance of itself: our figure over each anchor's (>1: ours is better)."""
    by = {r.get("server"): r for r in rows if r.get("scenario") == "federation" and "error" not in r}
    if not by:
        return []

    def num(server, key):
        v = by.get(server, {}).get(key)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def ratio(ours, anchor, higher):
        if ours is None or anchor is None or ours == 0 or anchor == 0:
            return "–"
        return f"{(ours / anchor if higher else anchor / ours):.2f}×"

    out = ["| federation (pair of instances, A→B) | ours↔ours | prosody↔prosody | ejabberd↔ejabberd | ours/prosody | ours/ejabberd |",
           "|---|---|---|---|---|---|"]
    for key, label, higher in (("max_sustained_rate", "msgs/s sustained (p99<100 ms)", True),
                               ("fixed_rate", "fixed rate msgs/s", None),
                               ("p50_ms", "p50 ms at fixed rate", False),
                               ("p99_ms", "p99 ms at fixed rate", False),
                               ("p999_ms", "p999 ms at fixed rate", False),
                               ("fixed_lost", "lost at fixed rate", None),
                               ("p99_at_max_ms", "p99 ms at the sustained maximum", None)):
        o, p, e = num("ours", key), num("prosody", key), num("ejabberd", key)
        rp = ratio(o, p, higher) if higher is not None else ""
        re_ = ratio(o, e, higher) if higher is not None else ""
        out.append(f"| {label} | {fmt(o)} | {fmt(p)} | {fmt(e)} | {rp} | {re_} |")
    stops = ", ".join(f"{s}: {by[s].get('stop_reason')}" for s in SERVERS if s in by)
    out.append("")
    out.append(f"Ratios: msgs/s ours over the anchor's, latency the anchor's over ours (>1: ours is better). Search stopped by: {stops}.")
    return out


def million_budget(rows):
    """Issue 18: a memory budget for one million idle sessions of our server, extrapolated (and said to be) from the
    per-session figure of each idle size measured: baseline RSS plus one million times the per-session growth."""
    out = []
    for r in rows:
        if r.get("scenario") != "idle" or r.get("server") != "ours" or "error" in r:
            continue
        per, base, n = r.get("rss_per_session_kb"), r.get("rss_before_mb"), r.get("sessions")
        if not isinstance(per, (int, float)) or not isinstance(base, (int, float)) or not n:
            continue
        gib = (base * 1024 + per * 1_000_000) / (1024 * 1024)
        out.append(f"| {n:,} | {per:.1f} | {base:,.0f} | {gib:.1f} GiB | {'fits' if gib <= 24 else 'does not fit'} in 24 GiB |")
    if not out:
        return []
    return ["| idle sessions measured | KiB per session | RSS before, MiB | 1,000,000 sessions (extrapolated) | |",
            "|---|---|---|---|---|"] + out


def storage_table(rows):
    """With --storage postgresql: our server on each storage, against the PostgreSQL targets of issue 16."""
    by = {}
    for r in rows:
        if "error" not in r:
            by.setdefault((r.get("scenario"), r.get("server")), r)

    def get(scenario, server, key):
        v = by.get((scenario, server), {}).get(key)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    if not any(s == "ours-pg" for (_, s) in by):
        return []
    out = ["| storage scenario | embedded | postgresql | target (postgresql) |", "|---|---|---|---|"]
    prosody_drain = get("offline", "prosody", "drain_per_s")
    for key, label in (("store_per_s", "offline messages stored/s"), ("drain_per_s", "offline messages drained/s")):
        e, p = get("offline", "ours", key), get("offline", "ours-pg", key)
        target = ""
        if key == "drain_per_s":
            if p is not None and prosody_drain:
                target = f"≥2× Prosody's {fmt(prosody_drain)}: {p / prosody_drain:.2f}× {'met' if p >= 2 * prosody_drain else 'short'}"
            else:
                target = "≥2× Prosody's (Prosody not run)"
        out.append(f"| {label} | {fmt(e)} | {fmt(p)} | {target} |")
    off_e, off_p = get("throughput", "ours", "max_sustained_rate"), get("throughput", "ours-pg", "max_sustained_rate")
    on_e, on_p = get("throughput", "ours-arch", "max_sustained_rate"), get("throughput", "ours-pg-arch", "max_sustained_rate")
    out.append(f"| 1:1 msgs/s sustained, archiving off | {fmt(off_e)} | {fmt(off_p)} | |")
    out.append(f"| 1:1 msgs/s sustained, archiving on + XEP-0198 acks | {fmt(on_e)} | {fmt(on_p)} | |")

    def cost(on, off):
        return None if on is None or not off else max(0.0, 1 - on / off)
    ce, cp = cost(on_e, off_e), cost(on_p, off_p)
    pct = lambda c: "–" if c is None else f"{c * 100:.0f} %"
    out.append(f"| cost of archiving (share of peak 1:1 lost) | {pct(ce)} | {pct(cp)} | ≤30 %{'' if cp is None else (' met' if cp <= 0.30 else ' short')} |")
    for key, label in (("p50_ms", "newest-50 MAM page p50 ms"), ("p99_ms", "newest-50 MAM page p99 ms")):
        e, p = get("mam-page", "ours", key), get("mam-page", "ours-pg", key)
        target = ""
        if key == "p50_ms":
            target = "≤5 ms" + ("" if p is None else (" met" if p <= 5 else " short"))
        out.append(f"| {label} | {fmt(e)} | {fmt(p)} | {target} |")
    e, p = get("mam-page", "ours", "archived"), get("mam-page", "ours-pg", "archived")
    out.append(f"| messages in that archive | {fmt(e)} | {fmt(p)} | 1,000,000 |")
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("--size", default="")
    p.add_argument("--markdown")
    a = p.parse_args()
    rows = load(a.results)
    lines, errors = table(rows)
    fed = federation_table(rows)
    if fed:
        lines += ["", "Federation (each server with a second instance of itself over s2s on loopback; self-signed "
                  "certificates, so the links authenticate with dialback over TLS):", ""] + fed
    for r in rows:
        if r.get("scenario") == "loadavg":
            lines += ["", f"Load average (1/5/15 min) when the federation pairs started: {r.get('federation_start')}; "
                      f"when they were done: {r.get('federation_end')}."]
    budget = million_budget(rows)
    if budget:
        lines += ["", "Memory budget for one million idle sessions of our server: extrapolated linearly from each measured "
                  "size (RSS before the sessions plus one million times the per-session growth), not measured; the "
                  "file-descriptor limit here stops a real run far below it.", ""] + budget
    storage = storage_table(rows)
    if storage:
        lines += ["", "Storage (our server on the embedded store and on PostgreSQL):", ""] + storage
    print("\n".join(lines))
    for e in errors:
        print(f"note: {e.get('server')} {e.get('scenario')}: {e.get('error') or e.get('first_error')}")
    if a.markdown:
        cpu = ""
        try:
            cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                                 capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
        with open(a.markdown, "w") as f:
            f.write(f"# Benchmark {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC ({a.size})\n\n")
            f.write(f"Machine: {platform.machine()}, {cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; "
                    "load generator on the same machine. Ratios >1 mean ours is better.\n\n")
            f.write("\n".join(lines) + "\n\n")
            if errors:
                f.write("Notes:\n\n")
                for e in errors:
                    f.write(f"- {e.get('server')} {e.get('scenario')}: {e.get('error') or e.get('first_error')}\n")
                f.write("\n")
            f.write("Raw result lines:\n\n```\n")
            for r in rows:
                f.write(json.dumps(r) + "\n")
            f.write("```\n")


if __name__ == "__main__":
    sys.exit(main())
