#!/usr/bin/env python3
"""Render bench/startup.py's JSON as a markdown section and put it into RESULTS.md,
replacing the previous section of the same benchmark (git history keeps old ones)."""

import argparse
import json
import os

BEGIN = "<!-- bench/runtime.sh:begin -->"
END = "<!-- bench/runtime.sh:end -->"


def ms(v):
    return f"{v:.1f} ms"


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def ratio(results, a, b, key):
    sa = (results.get(a) or {}).get("stats")
    sb = (results.get(b) or {}).get("stats")
    if not sa or not sb or results[a]["failed"] or results[b]["failed"]:
        missing = [n for n in (a, b) if not (results.get(n) or {}).get("stats") or results[n]["failed"]]
        return f"n/a ({', '.join(missing)} failed)"
    return f"{sa[key] / sb[key]:.2f}x"


def render(data, meta):
    res = data["runtimes"]
    lines = [
        BEGIN,
        "## Start-up: coracle-runtime vs runc vs crun",
        "",
        f"- date: {meta.date}",
        f"- machine: {meta.machine}",
        f"- command: `{meta.command}`",
        f"- each invocation: `RT --root <own temp root per runtime> run --bundle <bundle> <unique id>`;"
        f" busybox bundle from `scripts/mkbundle.sh` running `/bin/true`, cgroupsPath"
        f" `/coracle-bench/<id>`; {data['rounds']} rounds after {data['warmup']} warm-up rounds,"
        " round-robin with the order rotated every round; all runtimes in one private mount"
        " namespace with `/sys/fs/cgroup/unified` unmounted (crun 1.8 refuses the v1/v2 hybrid"
        " otherwise)",
        "- latency: monotonic clock around spawn + wait of the runtime process; peak RSS: GNU"
        " `time -f %M` of a second, untimed run in the same round (wait4's `ru_maxrss`: the"
        " largest of the runtime process and the descendants it reaped; floor about 1 MiB)",
        f"- versions: {meta.versions}",
        "",
        "| runtime | runs | median | p90 | min | peak RSS (median) | peak RSS (max) | status |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in res.items():
        s = r["stats"]
        status = "ok" if not r["failed"] else "FAILED: " + " ".join(r["failed"].split())[:160]
        if s and s["failures"]:
            status += f" ({s['failures']} failed invocations)"
        if s:
            lines.append(
                f"| {name} | {s['runs']} | {ms(s['median_ms'])} | {ms(s['p90_ms'])} |"
                f" {ms(s['min_ms'])} | {mib(s['rss_median_kib'])} | {mib(s['rss_max_kib'])} | {status} |"
            )
        else:
            lines.append(f"| {name} | 0 | - | - | - | - | - | {status} |")
    lines += ["", "| ratio | median latency | peak RSS (median) |", "|---|---:|---:|"]
    for a, b in (("coracle", "runc"), ("coracle", "crun"), ("crun", "runc")):
        if a in res and b in res:
            lines.append(
                f"| {a}/{b} | {ratio(res, a, b, 'median_ms')} | {ratio(res, a, b, 'rss_median_kib')} |"
            )
    lines.append(END)
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--versions", required=True)
    meta = ap.parse_args()
    with open(meta.json) as f:
        data = json.load(f)
    section = render(data, meta)
    print(section)

    text = ""
    if os.path.exists(meta.results):
        with open(meta.results) as f:
            text = f.read()
    if not text:
        text = "# Benchmark results\n\nWritten by the scripts in `bench/`; each replaces its own section.\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(meta.results + ".new", "w") as f:
        f.write(text)
    os.replace(meta.results + ".new", meta.results)


if __name__ == "__main__":
    main()
