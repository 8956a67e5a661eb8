#!/usr/bin/env bash
# Containers end to end: coracle vs Docker vs Podman, side by side in one run. Run as root:
#
#   bench/engine.sh
#
# Environment:
#   ROUNDS=10        timed rounds of `run --rm IMAGE true` (after one warm-up round), the
#                    engines interleaved and their order turned every round
#   SETTLE=0         seconds of pause before each timed run, so that what the previous
#                    engine still does in the background is not timed as the next one's.
#                    Off by default: on this VM an idle pause makes the next run of any
#                    engine slower (coracle's run --rm: 44 ms back to back, 51.5 ms after
#                    0.5 s of pause, medians of 15)
#   N=10             idle containers per engine for the memory-per-container measurement
#   N200=200         detached containers per engine for the mass start
#   LIMIT200=300     seconds an engine may take for the N200 starts before it is stopped
#   ENGINES="coracle docker podman"
#   NO_BUILD=1       use the existing target/release binaries
#
# Everything happens in one throwaway host (unshare --net --mount): coracle's bridge
# (coracle0, 172.17.0.0/16), docker0 (172.19.0.0/16, its own dockerd with data root, exec
# root, pid file and socket in a temp dir, as bench/network.sh runs it) and Podman's
# netavark bridge (10.88.0.0/16, its own --root/--runroot and a containers.conf of its own
# through CONTAINERS_CONF: runtime runc, ulimits within the hard limits) exist only there.
# The data roots are on the disk; the three run roots (coracle's --run-root, Docker's
# exec root, Podman's runroot) on one tmpfs mounted there, as /run is on a standard host.
# The image is busybox from scripts/mkimage.sh (Cmd `sleep 3600`), turned into a docker
# archive with skopeo and loaded by each engine (`coracle load`, `docker load`, `podman load`).
# Measured:
#   1. latency of `run --rm IMAGE true` (bridge network), medians
#   2. PSS (/proc/PID/smaps_rollup) of the per-container monitor process with N idle
#      containers: coracle-shim, containerd-shim-runc-v2 (Docker), conmon (Podman);
#      the daemons' PSS (dockerd + containerd) is reported beside it
#   3. N200 `run -d IMAGE sleep 3600`: time, the monitors' total PSS, `ps` time with them
#      running (median of 3), and `rm -f` of all of them with the engine's own command
# Cgroups go under /coracle-bench/<engine>-<pid>. A tool that fails is recorded as failed
# with its error, and the run goes on. Results replace this benchmark's section of
# bench/RESULTS.md.
# shellcheck disable=SC2129  # one line per result, appended as measured
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
. "$REPO/scripts/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib-docker.sh
. "$REPO/bench/lib-docker.sh"

ROUNDS=${ROUNDS:-10}
SETTLE=${SETTLE:-0}
N=${N:-10}
N200=${N200:-200}
LIMIT200=${LIMIT200:-300}
read -r -a ENGINE_LIST <<<"${ENGINES:-coracle docker podman}"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
CORACLE="$BIN/coracle"

if [[ ${1:-} != --inside ]]; then
	[[ $EUID -eq 0 ]] || die "run the benchmark as root"
	step "packages and build"
	ensure_packages skopeo umoci busybox-static python3 iproute2 util-linux nftables
	for e in "${ENGINE_LIST[@]}"; do
		case $e in
		docker) ensure_docker_installed ;;
		podman) ensure_packages podman runc conmon ;;
		esac
	done
	if [[ -z ${NO_BUILD:-} ]]; then
		ensure_cargo
		(cd "$REPO" && cargo build --release -p coracle-cli -p coracle-shim -p coracle-runtime -p coracle-network)
	fi
	for b in coracle coracle-shim coracle-runtime coracle-dns; do
		[[ -x $BIN/$b ]] || die "$BIN/$b is missing (build it, or unset NO_BUILD)"
	done
	# shellcheck disable=SC2089,SC2090  # the quotes are text for the report
	export CMDLINE="ROUNDS=$ROUNDS SETTLE=$SETTLE N=$N N200=$N200 LIMIT200=$LIMIT200 ENGINES='${ENGINE_LIST[*]}' bench/engine.sh"
	step "measuring in a throwaway host (${CMDLINE})"
	exec unshare --net --mount --propagation private -- "$0" --inside
fi

T=$(mktemp -d /tmp/coracle-bench-engine.XXXXXX)
# coracle's run root holds unix sockets named by the 64-hex container ID, so it must be short
# (sun_path is 108 bytes): a long one fails at start with "path must be shorter than SUN_LEN".
RR=$(mktemp -d /run/cbe.XXXXXX)
# The engines' run-time state (coracle's run root, Docker's exec root with containerd's
# state, Podman's runroot) goes on a tmpfs, as under /run on a standard host. On these
# machines /run is on the root ext4, which has no journal: there every new inode is
# searched for past the ones deleted in the last minutes (ext4's recently_deleted), about
# 0.5 ms per file or directory created, for every engine alike. The mount lives in this
# throwaway host's mount namespace only.
mount -t tmpfs -o mode=0755,size=1g coracle-bench-run "$RR"
DK="$T/docker"
DK_EXEC="$RR/docker"
CG="coracle-bench"
CG_CORACLE="$CG/coracle-$$" CG_DOCKER="$CG/docker-$$" CG_PODMAN="$CG/podman-$$"
IMG=bench:latest
RES="$T/results"
: >"$RES"
declare -A FAILED=()
NOTES=()
ME_NET=$(readlink /proc/self/ns/net)

C() {
	# The default bridge's subnet through its variable (the flag is --default-subnet).
	NO_COLOR=1 CORACLE_SUBNET=172.17.0.0/16 "$CORACLE" --root "$T/coracle/root" --run-root "$RR" \
		--bridge coracle0 --cgroup-parent "/$CG_CORACLE" "$@"
}
P() {
	CONTAINERS_CONF="$T/podman/containers.conf" podman --root "$T/podman/root" \
		--runroot "$RR/podman" --storage-driver overlay --cgroup-manager cgroupfs \
		--events-backend file "$@"
}
# eng ENGINE ARGS...: the engine's own command line
eng() {
	local e=$1
	shift
	case $e in
	coracle) C "$@" ;;
	docker) dk "$@" ;;
	podman) P "$@" ;;
	esac
}
# Extra `run` flags per engine (podman: its cgroup parent; the others set it globally).
run_flags() {
	case $1 in
	podman) echo "--cgroup-parent /$CG_PODMAN" ;;
	esac
}

# PIDs of an engine's per-container monitor processes in this throwaway host.
monitors() {
	local name p
	case $1 in
	coracle) name=coracle-shim ;;
	docker) name=containerd-shim ;; # comm of containerd-shim-runc-v2, cut to 15 characters
	podman) name=conmon ;;
	esac
	for p in $(pgrep -x "$name" 2>/dev/null); do
		[[ $(readlink "/proc/$p/ns/net" 2>/dev/null) == "$ME_NET" ]] && echo "$p"
	done
	return 0
}
daemons() {
	local p
	[[ $1 == docker && -n $DOCKERD ]] || return 0
	echo "$DOCKERD"
	for p in $(pgrep -x containerd 2>/dev/null); do
		[[ $(readlink "/proc/$p/ns/net" 2>/dev/null) == "$ME_NET" ]] && echo "$p"
	done
	return 0
}
# pss PIDS... -> total Pss in kB
pss() {
	local p t=0 v
	for p in "$@"; do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
now_us() { echo "${EPOCHREALTIME/./}"; }
# note ENGINE TEXT: an error worth recording that does not stop the engine's measurements
note() {
	# shellcheck disable=SC2001  # strip colour codes
	NOTES+=("$1=$(sed 's/\x1b\[[0-9;]*m//g' <<<"$2" | tr '\n' ' ' | cut -c1-600)")
	echo "  $1 note: $2" >&2
}
fail() { # fail ENGINE REASON: recorded, and the engine is skipped from then on
	local why
	# shellcheck disable=SC2001  # strip colour codes
	why=$(sed 's/\x1b\[[0-9;]*m//g' <<<"$2" | tr '\n' ' ' | cut -c1-600)
	FAILED[$1]="${FAILED[$1]:+${FAILED[$1]}; }$why"
	echo "  $1 failed: ${FAILED[$1]}" >&2
}
count_running() { eng "$1" ps -q 2>/dev/null | grep -c . || true; }
remove_all() { # the engine's own rm -f of every container it has
	local ids
	ids=$(eng "$1" ps -aq 2>/dev/null || true)
	[[ -z $ids ]] && return 0
	# shellcheck disable=SC2086
	if [[ $1 == podman ]]; then
		# podman's rm -f stops with a 10 s grace period first; Docker's and coracle's kill at once.
		P rm -f -t 0 $ids >/dev/null 2>>"$T/$1.rm.err"
	else
		eng "$1" rm -f $ids >/dev/null 2>>"$T/$1.rm.err"
	fi
}

# remove_checked ENGINE WHAT: rm -f of everything; an error is noted and rm -f tried once more
remove_checked() {
	local left
	: >"$T/$1.rm.err"
	remove_all "$1" && return 0
	note "$1" "rm -f of $2: $(tail -3 "$T/$1.rm.err")"
	left=$(eng "$1" ps -aq 2>/dev/null | grep -c . || true)
	((left == 0)) && return 0
	note "$1" "$left container(s) left after rm -f; rm -f once more"
	: >"$T/$1.rm.err"
	remove_all "$1" || fail "$1" "second rm -f: $(tail -3 "$T/$1.rm.err")"
}

cleanup() {
	local rc=$? e p
	set +e
	trap - EXIT INT TERM
	echo "cleaning up" >&2
	for e in "${ENGINE_LIST[@]}"; do
		case $e in
		coracle) [[ -x $CORACLE && -d $T/coracle ]] && remove_all coracle ;;
		podman) [[ -d $T/podman/root ]] && { remove_all podman; P system reset -f >/dev/null 2>&1; } ;;
		docker) stop_dockerd ;;
		esac
	done
	for e in "${ENGINE_LIST[@]}"; do
		p=$(monitors "$e" | tr '\n' ' ')
		[[ -n $p ]] && echo "warning: $e monitor processes still running: $p" >&2
	done
	for m in $(mounts_under "$RR" | sort -r); do umount -l "$m" 2>/dev/null; done
	if [[ -n "$(mounts_under "$RR")" ]]; then
		echo "warning: mounts remain under $RR; not removing it" >&2
	else
		rm -rf "$RR"
	fi
	mounts_under "$T" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	for e in "$CG_CORACLE" "$CG_DOCKER" "$CG_PODMAN"; do cgroup_rmdir_tree "$e"; done
	# The shared parent goes only when empty (bench/runtime.sh uses it too).
	for p in "/sys/fs/cgroup/$CG" /sys/fs/cgroup/*/"$CG"; do [[ -d $p ]] && rmdir "$p" 2>/dev/null; done
	if [[ -n "$(mounts_under "$T")" ]]; then
		echo "warning: mounts remain under $T; not removing it" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip link set lo up

step "image: busybox, Cmd sleep 3600"
"$REPO/scripts/mkimage.sh" "$T/layout" bench -- sleep 3600 >/dev/null
skopeo copy -q "oci:$T/layout:bench" "docker-archive:$T/bench.tar:$IMG"

step "engines: set up and load the image"
mkdir -p "$T/coracle" "$T/podman/tmp" "$T/podman/networks"
cat >"$T/podman/containers.conf" <<EOF
# bench/engine.sh: Podman's configuration for this run only
# (nproc with the host hard limit 96365 as its hard limit fails: runc gets EPERM for rlimit 6)
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
tmp_dir = "$T/podman/tmp"
events_logfile_path = "$T/podman/events.log"
[network]
network_config_dir = "$T/podman/networks"
EOF
for e in "${ENGINE_LIST[@]}"; do
	case $e in
	coracle) out=$(C load -i "$T/bench.tar" 2>&1) || fail coracle "load: $out" ;;
	docker)
		if ! start_dockerd --bip 172.19.0.1/16 --cgroup-parent "/$CG_DOCKER" 2>"$T/dockerd.err"; then
			fail docker "dockerd did not come up: $(tail -3 "$T/dockerd.err")"
		else
			out=$(dk load -q -i "$T/bench.tar" 2>&1) || fail docker "load: $out"
		fi
		;;
	podman) out=$(P load -q -i "$T/bench.tar" 2>&1) || fail podman "load: $out" ;;
	esac
done
VERSIONS="coracle $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)"
for e in "${ENGINE_LIST[@]}"; do
	case $e in
	docker) VERSIONS+="; Docker $(dockerd --version | awk '{print $3}' | tr -d ,), containerd $(containerd --version | awk '{print $3}'), $(runc --version | head -1)" ;;
	podman) VERSIONS+="; $(podman --version), $(conmon --version | head -1)" ;;
	esac
done
echo "load $(cut -d' ' -f1 /proc/loadavg)" >>"$RES"

# ---- 1. run --rm IMAGE true ----
step "1. run --rm $IMG true: $ROUNDS rounds (+1 warm-up), interleaved"
for ((round = 0; round <= ROUNDS; round++)); do
	n=${#ENGINE_LIST[@]}
	line="  round $round:"
	for ((k = 0; k < n; k++)); do
		e=${ENGINE_LIST[$(((k + round) % n))]}
		[[ -n ${FAILED[$e]:-} ]] && continue
		# Let the previous run's asynchronous work finish first (Podman's cleanup process
		# started by conmon, dockerd's and containerd's own), so that it is not counted in
		# the next engine's time: on 2 CPUs it was.
		sleep "$SETTLE"
		t0=$(now_us)
		# shellcheck disable=SC2046
		if ! out=$(eng "$e" run --rm $(run_flags "$e") "$IMG" true 2>&1); then
			fail "$e" "run --rm $IMG true: $out"
			continue
		fi
		t1=$(now_us)
		((round > 0)) && echo "lat-$e $(((t1 - t0) / 1000))" >>"$RES"
		line+=" $e $(((t1 - t0) / 1000)) ms"
	done
	echo "$line" >&2
done

# ---- 2. memory per idle container ----
step "2. PSS of the monitor process with $N idle containers"
for e in "${ENGINE_LIST[@]}"; do
	[[ -n ${FAILED[$e]:-} ]] && continue
	ok=1
	for i in $(seq "$N"); do
		# shellcheck disable=SC2046
		if ! out=$(eng "$e" run -d $(run_flags "$e") --name "idle$i" "$IMG" sleep 3600 2>&1); then
			fail "$e" "run -d (idle container $i): $out"
			ok=0
			break
		fi
	done
	if ((ok)); then
		sleep 3
		running=$(count_running "$e")
		mapfile -t mons < <(monitors "$e")
		mapfile -t dms < <(daemons "$e")
		echo "idle-running-$e $running" >>"$RES"
		echo "idle-monitors-$e ${#mons[@]}" >>"$RES"
		echo "idle-pss-$e $(pss "${mons[@]}")" >>"$RES"
		((${#dms[@]})) && echo "idle-daemon-pss-$e $(pss "${dms[@]}")" >>"$RES"
		echo "  $e: $running running, ${#mons[@]} monitors, PSS $(pss "${mons[@]}") kB" >&2
		((running == N)) || fail "$e" "$running of $N idle containers running after run -d"
	fi
	remove_checked "$e" "the $N idle containers"
done

# ---- 3. N200 detached containers ----
step "3. $N200 detached containers per engine (limit ${LIMIT200}s each)"
for e in "${ENGINE_LIST[@]}"; do
	[[ -n ${FAILED[$e]:-} ]] && continue
	t0=$(now_us)
	started=0
	for i in $(seq "$N200"); do
		# shellcheck disable=SC2046
		if ! out=$(eng "$e" run -d $(run_flags "$e") "$IMG" sleep 3600 2>&1); then
			fail "$e" "run -d, container $((started + 1)) of $N200: $out"
			break
		fi
		started=$((started + 1))
		if ((($(now_us) - t0) / 1000000 >= LIMIT200 && started < N200)); then
			fail "$e" "stopped after ${LIMIT200}s with $started of $N200 started"
			break
		fi
	done
	t1=$(now_us)
	echo "many-started-$e $started" >>"$RES"
	echo "many-start-ms-$e $(((t1 - t0) / 1000))" >>"$RES"
	sleep 3
	running=$(count_running "$e")
	mapfile -t mons < <(monitors "$e")
	mapfile -t dms < <(daemons "$e")
	echo "many-running-$e $running" >>"$RES"
	echo "many-monitors-$e ${#mons[@]}" >>"$RES"
	echo "many-pss-$e $(pss "${mons[@]}")" >>"$RES"
	((${#dms[@]})) && echo "many-daemon-pss-$e $(pss "${dms[@]}")" >>"$RES"
	echo "  $e: $started started in $(((t1 - t0) / 1000)) ms, $running running, ${#mons[@]} monitors, PSS $(pss "${mons[@]}") kB" >&2
	((running == started)) || fail "$e" "$running of $started detached containers running (ps -q)"
	for _ in 1 2 3; do
		t0=$(now_us)
		eng "$e" ps >/dev/null 2>&1 || fail "$e" "ps with $running running failed"
		echo "many-ps-ms-$e $((($(now_us) - t0) / 1000))" >>"$RES"
	done
	t0=$(now_us)
	remove_all "$e" || note "$e" "rm -f of the $started containers: $(tail -3 "$T/$e.rm.err")"
	echo "many-rm-ms-$e $((($(now_us) - t0) / 1000))" >>"$RES"
	left=$(eng "$e" ps -aq 2>/dev/null | grep -c . || true)
	echo "  $e: rm -f took $((($(now_us) - t0) / 1000)) ms, $left left" >&2
	((left == 0)) || remove_checked "$e" "the $left containers left after the first rm -f"
done
echo "load $(cut -d' ' -f1 /proc/loadavg)" >>"$RES"

FAILED_ARGS=()
for e in "${!FAILED[@]}"; do FAILED_ARGS+=("failed:$e=${FAILED[$e]}"); done
for x in "${NOTES[@]}"; do FAILED_ARGS+=("note:$x"); done
step "results"
python3 - "$RES" "$REPO/bench/RESULTS.md" "${CMDLINE:-bench/engine.sh}" "$VERSIONS" "$N" "$N200" \
	"${ENGINE_LIST[*]}" "${FAILED_ARGS[@]}" <<'PY'
import statistics, sys, datetime, os
res, out, cmdline, versions, n, n200, engines, *failed = sys.argv[1:]
engines = engines.split()
notes = [tuple(f[5:].split("=", 1)) for f in failed if f.startswith("note:")]
failed = dict(f[7:].split("=", 1) for f in failed if f.startswith("failed:"))
vals = {}
for line in open(res):
    k, v = line.split()
    vals.setdefault(k, []).append(float(v))
def med(k):
    return statistics.median(vals[k]) if k in vals else None
def fmt(x, spec=".0f"):
    return "n/a" if x is None else format(x, spec)
NAMES = {"coracle": "coracle", "docker": "Docker", "podman": "Podman"}
MON = {"coracle": "coracle-shim", "docker": "containerd-shim-runc-v2", "podman": "conmon"}
B, E = "<!-- bench/engine.sh:begin -->", "<!-- bench/engine.sh:end -->"
L = [B, "## Containers end to end: coracle vs Docker vs Podman", ""]
L.append(f"- date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} CPUs, kernel {os.uname().release}")
L.append(f"- command: `{cmdline}` (one throwaway host: `unshare --net --mount`; each engine with its own root, bridge network)")
L.append(f"- versions: {versions}")
L.append(f"- load average (1 min) at the start and end of the measurements: {', '.join(f'{x:.1f}' for x in vals.get('load', []))} (the machine is shared: other builds run meanwhile)")
L.append("- image: busybox from `scripts/mkimage.sh` (Cmd `sleep 3600`), the same docker archive loaded into each engine")
L.append("")
L.append("### `run --rm IMAGE true`")
L.append("")
L.append("| engine | median ms | runs (ms) | coracle / engine |")
L.append("|---|---:|---|---:|")
cm = med("lat-coracle")
for e in engines:
    m = med(f"lat-{e}")
    runs = ", ".join(f"{x:.0f}" for x in vals.get(f"lat-{e}", []))
    ratio = f"{cm / m:.3f}x" if (cm is not None and m) else "n/a"
    L.append(f"| {NAMES[e]} | {fmt(m)} | {runs or 'failed'} | {ratio} |")
if cm is not None:
    targets = []
    for e, t in (("docker", 0.1), ("podman", 0.25)):
        m = med(f"lat-{e}")
        if m:
            targets.append(f"{cm / m:.3f}x {NAMES[e]}'s (target ≤ {t}x: {'met' if cm / m <= t else 'not met'})")
    if targets:
        L.append("")
        L.append("coracle's median is " + "; ".join(targets) + ".")
L.append("")
L.append(f"### Memory per idle container ({n} idle `sleep` containers per engine)")
L.append("")
L.append("PSS from `/proc/PID/smaps_rollup` of the per-container monitor processes, summed and divided by the containers running; the daemons (Docker only: dockerd + containerd) beside it.")
L.append("")
L.append("| engine | monitor | monitors | running | PSS per container (KiB) | daemons' PSS (KiB) |")
L.append("|---|---|---:|---:|---:|---:|")
for e in engines:
    r = med(f"idle-running-{e}")
    p = med(f"idle-pss-{e}")
    per = p / r if (p is not None and r) else None
    L.append(f"| {NAMES[e]} | {MON[e]} | {fmt(med(f'idle-monitors-{e}'))} | {fmt(r)} | {fmt(per)} | {fmt(med(f'idle-daemon-pss-{e}'))} |")
per_idle = {}
for e in engines:
    r, p = med(f"idle-running-{e}"), med(f"idle-pss-{e}")
    if p is not None and r:
        per_idle[e] = p / r
if "coracle" in per_idle:
    cmp = [f"{per_idle['coracle'] / per_idle[e]:.2f}x {MON[e]}'s" for e in ("podman", "docker") if e in per_idle]
    if cmp:
        L.append("")
        L.append("coracle-shim's PSS per container is " + " and ".join(cmp) +
                 " (target: below conmon's and far below containerd-shim's).")
L.append("")
L.append(f"### {n200} detached containers (`run -d IMAGE sleep 3600`, one after another)")
L.append("")
L.append("| engine | started | time (s) | per container (ms) | running (`ps -q`) | monitors' total PSS (MiB) | per container (KiB) | daemons' PSS (MiB) | `ps` median of 3 (ms) | `rm -f` all (s) |")
L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for e in engines:
    s = med(f"many-started-{e}")
    t = med(f"many-start-ms-{e}")
    if s is None:
        L.append(f"| {NAMES[e]} | not run | | | | | | | | |")
        continue
    per = t / s if s else None
    pss = med(f"many-pss-{e}")
    dp = med(f"many-daemon-pss-{e}")
    rm = med(f"many-rm-ms-{e}")
    L.append(f"| {NAMES[e]} | {s:.0f} | {t/1000:.1f} | {fmt(per)} | {fmt(med(f'many-running-{e}'))} | "
             f"{fmt(pss / 1024 if pss is not None else None, '.1f')} | {fmt(pss / s if (pss is not None and s) else None)} | {fmt(dp / 1024 if dp is not None else None, '.1f')} | "
             f"{fmt(med(f'many-ps-ms-{e}'))} | {fmt(rm / 1000 if rm is not None else None, '.1f')} |")
if failed:
    L.append("")
    L.append("Failures (the engine was skipped for the rest of the run after its first failure):")
    L.append("")
    for e, why in sorted(failed.items()):
        why = why.replace("|", "\\|").strip()
        L.append(f"- {NAMES.get(e, e)}: `{why}`")
if notes:
    L.append("")
    L.append("Errors that did not stop the engine's measurements:")
    L.append("")
    for e, why in notes:
        why = why.replace("|", "\\|").strip()
        L.append(f"- {NAMES.get(e, e)}: `{why}`")
L.append(E)
sec = "\n".join(L)
text = open(out).read() if os.path.exists(out) else "# Benchmark results\n"
if B in text:
    a, rest = text.split(B, 1)
    text = a + sec + rest.split(E, 1)[1]
else:
    text = text.rstrip() + "\n\n" + sec + "\n"
open(out, "w").write(text)
print(sec)
PY
