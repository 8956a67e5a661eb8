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
#   nobrnf   bridge again, with net.bridge.bridge-nf-call-ip(6)tables=0 in the
#            throwaway host for that run (what br_netfilter costs)
# then the time of one endpoint's `coracle-net connect` + `disconnect` (a process
# per operation, as an engine that execs a network tool pays), 20 times.
# Then Docker's bridge, in the same throwaway host (DOCKER=0 skips it): dockerd
# runs there with its own data root, exec root, pid file and socket under a temp
# dir, so its iptables rules (FORWARD policy drop included) and docker0 exist only
# in that namespace. Once with --userland-proxy=true and once with false, RUNS
# rounds each:
#   docker-bridge   container -> container over docker0
#   docker-publish  host -> container through `-p 15202:5201` on 127.0.0.1
#                   (docker-proxy when the proxy is on, DNAT when it is off)
# and the cost of Docker's network set-up: `docker run --rm` of a no-op with
# --network bridge minus the same with --network none, 10 times each.
# The image is busybox (scripts/mkimage.sh) with the host's iperf3 and libraries
# bind-mounted read-only; it reaches dockerd through skopeo and `docker load`.
# Results replace this benchmark's section of bench/RESULTS.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
. "$REPO/scripts/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib-docker.sh
. "$REPO/bench/lib-docker.sh"

RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-5}
DOCKER=${DOCKER:-1}

if [[ ${1:-} != --inside ]]; then
	[[ $EUID -eq 0 ]] || die "run the benchmark as root"
	step "packages and build"
	ensure_packages iperf3 iproute2 util-linux nftables python3 jq
	# Without starting dockerd in the real host namespace (see bench/lib-docker.sh).
	[[ $DOCKER == 1 ]] && ensure_docker_installed
	[[ $DOCKER == 1 ]] && ensure_packages skopeo umoci busybox-static
	(cd "$REPO" && cargo build --release -p coracle-network)
	step "measuring in a throwaway host (RUNS=$RUNS, ${SECS}s per run)"
	exec unshare --net --mount --propagation private -- "$0" --inside
fi

NET_BIN="$REPO/target/release/coracle-net"
T=$(mktemp -d)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	[[ -n $DOCKERD ]] && stop_dockerd
	for f in "$T"/ns/*; do umount -l "$f" 2>/dev/null || true; done
	# dockerd's overlay and shm mounts, should it have left any.
	mounts_under "$T" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
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
# ... once nsenter has entered r2 (same namespace inode), not before.
for _ in $(seq 100); do
	[[ $(stat -L -c %i "/proc/$R2/ns/net") == $(stat -L -c %i "$T/ns/r2") ]] && break
	sleep 0.02
done
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
measure() {
	case $1 in
	raw) echo "raw $(iperf r2 r1 10.200.0.2 5201)" ;;
	bridge) echo "bridge $(iperf b a "$B_IP" 5201)" ;;
	publish) echo "publish $(iperf b host 127.0.0.1 15201)" ;;
	nobrnf)
		# The same bridge path with br_netfilter's IPv4/IPv6 hooks off in this
		# throwaway host (Coracle's rules do not need them; Docker turns them on).
		echo 0 >/proc/sys/net/bridge/bridge-nf-call-iptables
		echo 0 >/proc/sys/net/bridge/bridge-nf-call-ip6tables
		echo "bridge-nobrnf $(iperf b a "$B_IP" 5201)"
		echo "$BRNF4" >/proc/sys/net/bridge/bridge-nf-call-iptables
		echo "$BRNF6" >/proc/sys/net/bridge/bridge-nf-call-ip6tables
		;;
	esac >>"$T/results"
}
BRNF4=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)
BRNF6=$(cat /proc/sys/net/bridge/bridge-nf-call-ip6tables)
echo "load $(cut -d' ' -f1 /proc/loadavg)" >>"$T/results"
for round in $(seq "$RUNS"); do
	echo "round $round/$RUNS" >&2
	# The order turns each round, so no path always runs first (or after another).
	case $((round % 4)) in
	1) order="raw bridge publish nobrnf" ;;
	2) order="bridge publish nobrnf raw" ;;
	3) order="publish nobrnf raw bridge" ;;
	0) order="nobrnf raw bridge publish" ;;
	esac
	for path in $order; do measure "$path"; done
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

# ---- Docker, in this throwaway host ----
DK="$T/docker"
# dk, start_dockerd and stop_dockerd come from bench/lib-docker.sh.
start_proxy_dockerd() { # start_proxy_dockerd true|false
	start_dockerd --userland-proxy="$1" ||
		die "dockerd (--userland-proxy=$1) did not come up in the throwaway host"
}
# The host's iperf3 and its libraries, read-only, in a busybox container.
# (With merged /usr, /lib64/ld-linux-x86-64.so.2 points into /lib, which is /usr/lib.)
LIBS=(-v /usr/bin/iperf3:/usr/bin/iperf3:ro -v /usr/lib:/usr/lib:ro -v /lib64:/lib64:ro)
if [[ -L /lib ]]; then LIBS+=(-v "$(realpath /lib)":/lib:ro); else LIBS+=(-v /lib:/lib:ro); fi
# dk_iperf SERVER_TARGET PORT CLIENT(host|container) -> Gbit/s, server container "srv"
dk_iperf() {
	local target=$1 port=$2 cli=$3 json
	for _ in $(seq 50); do dk exec srv sh -c 'netstat -ltn | grep -q ":5201 "' 2>/dev/null && break; sleep 0.1; done
	if [[ $cli == host ]]; then
		json=$(iperf3 -c "$target" -p "$port" -t "$SECS" -J)
	else
		json=$(dk run --rm "${LIBS[@]}" bench:latest iperf3 -c "$target" -p "$port" -t "$SECS" -J)
	fi
	jq -er '.end.sum_received.bits_per_second / 1e9' <<<"$json" ||
		die "iperf3 to Docker's $target:$port from $cli gave no result: $(jq -r .error <<<"$json" 2>/dev/null)"
}
if [[ $DOCKER == 1 ]]; then
	"$REPO/scripts/mkimage.sh" "$T/layout" bench >/dev/null
	skopeo copy -q "oci:$T/layout:bench" "docker-archive:$T/bench.tar:bench:latest"
	for proxy in true false; do
		echo "docker, userland proxy $proxy" >&2
		start_proxy_dockerd "$proxy"
		dk image inspect bench:latest >/dev/null 2>&1 || dk load -q -i "$T/bench.tar" >/dev/null
		dk run -d --name srv -p 15202:5201 "${LIBS[@]}" bench:latest iperf3 -s >/dev/null
		SRV_IP=$(dk inspect -f '{{.NetworkSettings.IPAddress}}' srv)
		for round in $(seq "$RUNS"); do
			echo "round $round/$RUNS" >&2
			echo "docker-bridge-$proxy $(dk_iperf "$SRV_IP" 5201 container)" >>"$T/results"
			echo "docker-publish-$proxy $(dk_iperf 127.0.0.1 15202 host)" >>"$T/results"
		done
		dk rm -f srv >/dev/null
		if [[ $proxy == false ]]; then
			# Docker's network set-up: a no-op container with and without a network.
			for i in $(seq 10); do
				for mode in bridge none; do
					s=$(date +%s%N)
					dk run --rm --network "$mode" bench:latest true
					echo "docker-run-$mode $((($(date +%s%N) - s) / 1000))" >>"$T/results"
				done
			done
		fi
		stop_dockerd
	done
fi

echo "load $(cut -d' ' -f1 /proc/loadavg)" >>"$T/results"
DOCKER_VERSION=$(dockerd --version 2>/dev/null | awk '{print $3}' | tr -d , || true)
python3 - "$T/results" "$REPO/bench/RESULTS.md" "$RUNS" "$SECS" "${DOCKER_VERSION:-?}" "$BRNF4" <<'PY'
import statistics, sys, datetime, os, subprocess
results, out, runs, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
docker_version = sys.argv[5] if len(sys.argv) > 5 else "?"
brnf = sys.argv[6] if len(sys.argv) > 6 else "?"
vals = {}
for line in open(results):
    k, v = line.split()
    vals.setdefault(k, []).append(float(v))
med = {k: statistics.median(v) for k, v in vals.items()}
B, E = "<!-- bench/network.sh:begin -->", "<!-- bench/network.sh:end -->"
def r(k):
    return ", ".join(f"{x:.2f}" for x in vals[k])
def docker_section():
    if 'docker-bridge-true' not in vals:
        return "Docker's bridge was not measured in this run (DOCKER=0)."
    rows = []
    for proxy in ("true", "false"):
        b, p = f"docker-bridge-{proxy}", f"docker-publish-{proxy}"
        on = "on" if proxy == "true" else "off"
        rows.append(f"| Docker bridge, proxy {on} (container to container) | {med[b]:.2f} | {r(b)} | {med[b]/med['raw']:.2f}x | {med['bridge']/med[b]:.2f}x |")
        rows.append(f"| Docker published port, proxy {on} (host to container, 127.0.0.1) | {med[p]:.2f} | {r(p)} | {med[p]/med['raw']:.2f}x | {med['publish']/med[p]:.2f}x |")
    setup = (med['docker-run-bridge'] - med['docker-run-none']) / 1000
    return f"""
Docker {docker_version} in the same throwaway host (its own dockerd, data root and socket; proxy on, then off; RUNS rounds each, after the Coracle rounds):

| path | median Gbit/s | runs | of raw | Coracle's same path / Docker |
|---|---:|---|---:|---:|
{chr(10).join(rows)}

Docker's network set-up, `docker run --rm` of a no-op with `--network bridge` minus `--network none` (10 each, medians {med['docker-run-bridge']/1000:.0f} ms and {med['docker-run-none']/1000:.0f} ms): {setup:.0f} ms, against {(med['setup']+med['teardown'])/1000:.1f} ms for coracle-net connect + disconnect."""

sec = f"""{B}
## Bridge networking: throughput and endpoint set-up

- date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} CPUs, kernel {os.uname().release}
- command: `RUNS={runs} SECONDS_PER_RUN={secs} bench/network.sh` (one throwaway host, interleaved rounds whose order turns, iperf3 TCP, medians)
- load average (1 min) at the start and end of the measurements: {', '.join(f'{x:.1f}' for x in vals['load'])} on {os.cpu_count()} CPUs (the machine is shared: other builds run meanwhile, so single runs scatter)
- raw = plain veth pair between two namespaces; bridge = container to container on `coracle0`; publish = host to container via `-p 15201:5201` on 127.0.0.1 (DNAT)

| path | median Gbit/s | runs | of raw |
|---|---:|---|---:|
| raw veth | {med['raw']:.2f} | {r('raw')} | 1.00x |
| bridge (container to container) | {med['bridge']:.2f} | {r('bridge')} | {med['bridge']/med['raw']:.2f}x |
| published port (host to container) | {med['publish']:.2f} | {r('publish')} | {med['publish']/med['raw']:.2f}x |
| bridge, br_netfilter off (bridge-nf-call-iptables=0 in the throwaway host; was {brnf}) | {med['bridge-nobrnf']:.2f} | {r('bridge-nobrnf')} | {med['bridge-nobrnf']/med['raw']:.2f}x |

Endpoint via `coracle-net` (a process per operation, 20 times): connect median {med['setup']/1000:.1f} ms, disconnect median {med['teardown']/1000:.1f} ms.
{docker_section()}

Where the bridge loses against raw (an investigation on 2026-11-29, same machine at load 4-6, two sessions of ten
interleaved 2 s rounds per variant; CPU seconds per GB is iperf3's sender + receiver CPU use, which scatters less than
Gbit/s on a shared machine): session 1: raw 0.72 cpu-s/GB, bridge 0.81, bridge with br_netfilter off 0.70, Coracle's
table removed (so no conntrack) 0.71, a `notrack` rule for same-subnet traffic 0.82; session 2: raw 0.65, bridge 0.72,
br_netfilter off 0.67, Coracle's `forward` and `guard` chains emptied 0.74. So the ~11% extra is br_netfilter sending
every bridged packet through the IPv4 hooks and conntrack (which Coracle's NAT needs), not Coracle's rules. Coracle does
not need br_netfilter (hairpin traffic is masqueraded, so its replies are routed, not bridged), but the sysctl is per
network namespace and Docker, which turns it on, relies on it: Coracle leaves it as it finds it. On a host without
br_netfilter, or with it off, the `br_netfilter off` row is the one that applies. GRO on the veth was not tried (no
ethtool on the machine).
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
