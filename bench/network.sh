#!/usr/bin/env bash
# Bridge networking throughput and endpoint set-up time. Run as root:
#
#   bench/network.sh            # RUNS=3 SECONDS_PER_RUN=5
#
# Everything happens inside one throwaway host (unshare --net --mount): network
# namespaces stand in for containers, and traffic never leaves them. In one
# session, interleaved, RUNS times each:
#   raw      iperf3 over a plain veth pair between two namespaces (the ceiling)
#   bridge   container -> container over Coracle's bridge (coracle-net)
#   publish  host -> container through a published port (DNAT on 127.0.0.1)
# then the time of one endpoint's `coracle-net connect` + `disconnect` (a process
# per operation, as an engine that execs a network tool pays), 20 times.
# Docker's bridge is not measured: running dockerd would set iptables' FORWARD
# policy to drop in this machine's real host namespace, under everything else.
# Results replace this benchmark's section of bench/RESULTS.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
. "$REPO/scripts/lib.sh"

RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-5}

if [[ ${1:-} != --inside ]]; then
	[[ $EUID -eq 0 ]] || die "run the benchmark as root"
	step "packages and build"
	ensure_packages iperf3 iproute2 util-linux nftables python3 jq
	(cd "$REPO" && cargo build --release -p coracle-network)
	step "measuring in a throwaway host (RUNS=$RUNS, ${SECS}s per run)"
	exec unshare --net --mount --propagation private -- "$0" --inside
fi

NET_BIN="$REPO/target/release/coracle-net"
T=$(mktemp -d)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for f in "$T"/ns/*; do umount -l "$f" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
net() { "$NET_BIN" --state-dir "$T/state" --run-dir "$T/run" --no-dns "$@"; }
in_ns() { local ns=$1; shift; nsenter --net="$T/ns/$ns" "$@"; }
ip link set lo up
mkdir -p "$T/ns"

# raw: r1 <-veth-> r2, nothing else.
for n in r1 r2 a b; do net netns-add "$T/ns/$n"; done
# nsenter execs sleep in r2, so $! is a pid inside r2 (a shell function would
# background a subshell in the host namespace instead).
nsenter --net="$T/ns/r2" sleep 600 & R2=$!; PIDS="$PIDS $R2"
in_ns r1 ip link add rawa type veth peer name rawb netns "$R2"
in_ns r1 ip addr add 10.200.0.1/24 dev rawa; in_ns r1 ip link set rawa up
in_ns r2 ip addr add 10.200.0.2/24 dev rawb; in_ns r2 ip link set rawb up
# bridge: a and b on the default bridge; b publishes its iperf3 port.
net connect --container a --netns "$T/ns/a" >/dev/null
B_IP=$(net connect --container b --netns "$T/ns/b" -p 15201:5201 | jq -r .ip)

# iperf3 NS_SERVER NS_CLIENT TARGET PORT -> received Gbit/s
iperf() {
	local srv=$1 cli=$2 target=$3 port=$4
	nsenter --net="$T/ns/$srv" iperf3 -s -1 -p 5201 >/dev/null 2>&1 & local s=$!
	for _ in $(seq 50); do in_ns "$srv" ss -ltn 2>/dev/null | grep -q ':5201 ' && break; sleep 0.05; done
	local json
	if [[ $cli == host ]]; then
		json=$(iperf3 -c "$target" -p "$port" -t "$SECS" -J)
	else
		json=$(in_ns "$cli" iperf3 -c "$target" -p "$port" -t "$SECS" -J)
	fi
	wait "$s" || true
	jq -r '.end.sum_received.bits_per_second / 1e9' <<<"$json"
}

: >"$T/results"
for round in $(seq "$RUNS"); do
	echo "round $round/$RUNS" >&2
	echo "raw $(iperf r2 r1 10.200.0.2 5201)" >>"$T/results"
	echo "bridge $(iperf b a "$B_IP" 5201)" >>"$T/results"
	echo "publish $(iperf b host 127.0.0.1 15201)" >>"$T/results"
done

# Endpoint set-up + teardown through the command line, 20 times.
for i in $(seq 20); do
	s=$(date +%s%N)
	net connect --container "t$i" --netns "$T/ns/r1" >/dev/null
	m=$(date +%s%N)
	net disconnect --container "t$i"
	e=$(date +%s%N)
	echo "setup $(((m - s) / 1000))" >>"$T/results"
	echo "teardown $(((e - m) / 1000))" >>"$T/results"
done

net disconnect --container a; net disconnect --container b; net rm bridge

python3 - "$T/results" "$REPO/bench/RESULTS.md" "$RUNS" "$SECS" <<'PY'
import statistics, sys, datetime, os, subprocess
results, out, runs, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
vals = {}
for line in open(results):
    k, v = line.split()
    vals.setdefault(k, []).append(float(v))
med = {k: statistics.median(v) for k, v in vals.items()}
B, E = "<!-- bench/network.sh:begin -->", "<!-- bench/network.sh:end -->"
def r(k):
    return ", ".join(f"{x:.2f}" for x in vals[k])
sec = f"""{B}
## Bridge networking: throughput and endpoint set-up

- date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} CPUs, kernel {os.uname().release}
- command: `RUNS={runs} SECONDS_PER_RUN={secs} bench/network.sh` (one throwaway host, interleaved rounds, iperf3 TCP, medians)
- raw = plain veth pair between two namespaces; bridge = container to container on `coracle0`; publish = host to container via `-p 15201:5201` on 127.0.0.1 (DNAT)

| path | median Gbit/s | runs | of raw |
|---|---:|---|---:|
| raw veth | {med['raw']:.2f} | {r('raw')} | 1.00x |
| bridge (container to container) | {med['bridge']:.2f} | {r('bridge')} | {med['bridge']/med['raw']:.2f}x |
| published port (host to container) | {med['publish']:.2f} | {r('publish')} | {med['publish']/med['raw']:.2f}x |

Endpoint via `coracle-net` (a process per operation, 20 times): connect median {med['setup']/1000:.1f} ms, disconnect median {med['teardown']/1000:.1f} ms.
Docker's bridge (userland proxy on/off) is not measured: dockerd would set iptables' FORWARD policy to drop in the real host namespace.
{E}"""
text = open(out).read() if os.path.exists(out) else "# Benchmark results\n"
if B in text:
    a, rest = text.split(B, 1)
    text = a + sec + rest.split(E, 1)[1]
else:
    text = text.rstrip() + "\n\n" + sec + "\n"
open(out, "w").write(text)
print(sec)
PY
