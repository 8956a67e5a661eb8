#!/usr/bin/env python3
"""Interleaved start-up benchmark of runc-compatible OCI runtimes.

Driven by bench/runtime.sh, which prepares the bundle and the mount namespace. For each
round, every runtime runs the bundle (`RT --root ROOT run --bundle B ID`), in an order
rotated every round so no runtime always goes first, twice:

- a timed run: the monotonic clock around posix_spawn + wait4 of the runtime itself;
- an untimed run under GNU time, whose %M (wait4's ru_maxrss) is the peak RSS: the
  largest resident set of the runtime process and of the descendants it reaped. (Read
  from a spawn by this script, ru_maxrss would include Python's own resident set, which
  a vfork-based spawn shares until exec; GNU time's floor is about 1 MiB.)

A runtime that fails its sanity run (the container must print a marker) or fails three
invocations in a row is recorded as failed; the others go on.
"""

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time

MARKER = "coracle-bench-ok"
TIMEOUT_S = 30


class Timeout(Exception):
    pass


def on_alarm(_signum, _frame):
    raise Timeout()


def write_config(bundle, template, args, cgroups_path):
    config = json.loads(json.dumps(template))
    config["process"]["args"] = args
    config.setdefault("linux", {})["cgroupsPath"] = cgroups_path
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def force_delete(rt, cid):
    subprocess.run(
        [rt["path"], "--root", rt["root"], "delete", "--force", cid],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=TIMEOUT_S,
        check=False,
    )


def timed_run(rt, bundle, cid, err_path, prefix=()):
    """One invocation of PREFIX + RT run: (milliseconds, exit code, stderr tail)."""
    cmd = list(prefix) + [rt["path"], "--root", rt["root"], "run", "--bundle", bundle, cid]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    signal.alarm(TIMEOUT_S)
    start = time.monotonic_ns()
    pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=actions)
    try:
        _, status, _ = os.wait4(pid, 0)
        elapsed = time.monotonic_ns() - start
        signal.alarm(0)
    except Timeout:
        os.kill(pid, signal.SIGKILL)
        os.wait4(pid, 0)
        return None, -1, f"timed out after {TIMEOUT_S}s"
    code = os.waitstatus_to_exitcode(status)
    err = ""
    if code != 0:
        with open(err_path, errors="replace") as f:
            err = f.read()[-400:].strip()
    return elapsed / 1e6, code, err


def rss_run(rt, bundle, cid, err_path, time_bin):
    """One invocation under GNU time: (exit code, peak RSS in KiB, stderr tail)."""
    rss_path = err_path + ".rss"
    _, code, err = timed_run(rt, bundle, cid, err_path, (time_bin, "-f", "%M", "-o", rss_path))
    if code != 0:
        return code, 0, err
    with open(rss_path) as f:
        return 0, int(f.read().split()[-1]), ""


def sanity(rt, bundle, template, cgroup_parent, tag):
    """Run the bundle printing a marker; a runtime that exits 0 without running the
    container (a stub) must not be timed as if it had."""
    cid = f"{rt['name']}-sanity-{tag}"
    write_config(bundle, template, ["/bin/sh", "-c", f"echo {MARKER}"], f"/{cgroup_parent}/{cid}")
    try:
        res = subprocess.run(
            [rt["path"], "--root", rt["root"], "run", "--bundle", bundle, cid],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        force_delete(rt, cid)
        return f"sanity run timed out after {TIMEOUT_S}s"
    force_delete(rt, cid)
    if res.returncode != 0:
        return f"sanity run exited {res.returncode}: {res.stderr.strip()[-300:]}"
    if MARKER not in res.stdout:
        return f"sanity run exited 0 but the container printed nothing (stdout {res.stdout[:100]!r})"
    return None


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarize(rt):
    ms, rss = rt["ms"], rt["rss_kib"]
    if not ms:
        return None
    return {
        "runs": len(ms),
        "failures": rt["failures"],
        "median_ms": statistics.median(ms),
        "p90_ms": percentile(ms, 90),
        "min_ms": min(ms),
        "rss_median_kib": statistics.median(rss),
        "rss_max_kib": max(rss),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--state-dir", required=True, help="each runtime gets STATE_DIR/NAME as --root")
    ap.add_argument("--runtime", action="append", default=[], help="NAME=PATH, in order")
    ap.add_argument("--failed", action="append", default=[], help="NAME=REASON, not run")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--cgroup-parent", default="coracle-bench")
    ap.add_argument("--json", required=True)
    ap.add_argument("--time-bin", default="/usr/bin/time")
    opts = ap.parse_args()

    signal.signal(signal.SIGALRM, on_alarm)
    with open(os.path.join(opts.bundle, "config.json")) as f:
        template = json.load(f)
    tag = f"{os.getpid()}"
    err_path = os.path.join(opts.state_dir, "stderr")

    runtimes = []
    for spec in opts.runtime:
        name, path = spec.split("=", 1)
        root = os.path.join(opts.state_dir, name)
        os.makedirs(root, exist_ok=True)
        runtimes.append({"name": name, "path": path, "root": root, "ms": [], "rss_kib": [],
                         "failures": 0, "streak": 0, "failed": None})
    for spec in opts.failed:
        name, reason = spec.split("=", 1)
        runtimes.append({"name": name, "path": None, "root": None, "ms": [], "rss_kib": [],
                         "failures": 0, "streak": 0, "failed": reason})

    for rt in runtimes:
        if rt["failed"] is None:
            rt["failed"] = sanity(rt, opts.bundle, template, opts.cgroup_parent, tag)
            status = "ok" if rt["failed"] is None else "FAILED: " + rt["failed"]
            print(f"sanity {rt['name']}: {status}", flush=True)

    live = [rt for rt in runtimes if rt["failed"] is None]
    total = opts.warmup + opts.rounds
    for rnd in range(total):
        warm = rnd < opts.warmup
        active = [rt for rt in live if rt["failed"] is None]
        if not active:
            break
        shift = rnd % len(active)
        for rt in active[shift:] + active[:shift]:
            cid = f"{rt['name']}-{tag}-{rnd}"
            write_config(opts.bundle, template, ["/bin/true"], f"/{opts.cgroup_parent}/{cid}")
            ms, code, err = timed_run(rt, opts.bundle, cid, err_path)
            rss = 0
            if code == 0:
                cid += "-rss"
                write_config(opts.bundle, template, ["/bin/true"], f"/{opts.cgroup_parent}/{cid}")
                code, rss, err = rss_run(rt, opts.bundle, cid, err_path, opts.time_bin)
            if code != 0:
                force_delete(rt, cid)
                rt["failures"] += 1
                rt["streak"] += 1
                print(f"  {rt['name']} round {rnd}: exit {code}: {err}", file=sys.stderr, flush=True)
                if rt["streak"] >= 3:
                    rt["failed"] = f"3 invocations in a row failed; last: exit {code}: {err}"
                continue
            rt["streak"] = 0
            if not warm:
                rt["ms"].append(ms)
                rt["rss_kib"].append(rss)
        if not warm and (rnd - opts.warmup + 1) % 10 == 0:
            print(f"  round {rnd - opts.warmup + 1}/{opts.rounds}", flush=True)

    # Whatever a runtime left registered (a failed run, a timeout) is deleted here.
    for rt in live:
        res = subprocess.run([rt["path"], "--root", rt["root"], "list", "-q"],
                             capture_output=True, text=True, check=False)
        for cid in res.stdout.split():
            force_delete(rt, cid)

    out = {"rounds": opts.rounds, "warmup": opts.warmup, "runtimes": {}}
    for rt in runtimes:
        out["runtimes"][rt["name"]] = {"failed": rt["failed"], "path": rt["path"],
                                      "stats": summarize(rt)}
    with open(opts.json, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
