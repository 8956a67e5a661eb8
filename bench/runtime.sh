#!/usr/bin/env bash
# Start-up latency and peak RSS of coracle-runtime, runc and crun. Run as root:
#
#   bench/runtime.sh
#
# Environment:
#   ROUNDS=30             timed rounds (each round runs every runtime once)
#   WARMUP=2              untimed rounds first
#   RUNTIMES="coracle runc crun"
#   NO_BUILD=1            use the existing target/release/coracle-runtime
#
# The whole timed session runs inside one private mount namespace in which
# /sys/fs/cgroup/unified is unmounted: crun 1.8 refuses a cgroup v1/v2 hybrid host
# otherwise, and timing every runtime in that same namespace keeps the ratios fair.
# A runtime that fails is recorded as failed in the results; the others still run.
# Results replace this benchmark's section of bench/RESULTS.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
. "$REPO/scripts/lib.sh"

ROUNDS=${ROUNDS:-30}
WARMUP=${WARMUP:-2}
read -r -a WANTED <<<"${RUNTIMES:-coracle runc crun}"
CGROUP_PARENT=coracle-bench

[[ $EUID -eq 0 ]] || die "run the benchmark as root"

step "packages"
ensure_packages runc crun python3 time jq busybox-static util-linux

WORK=$(mktemp -d /tmp/coracle-bench.XXXXXX)
cleanup() {
	local rc=$?
	set +e
	cgroup_rmdir_tree "$CGROUP_PARENT"
	if [[ -n "$(mounts_under "$WORK")" ]]; then
		echo "warning: mounts remain under $WORK; not removing it" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --runtime NAME=PATH for each runtime to time, --failed NAME=REASON for the others.
RT_ARGS=()
VERSIONS=()
for name in "${WANTED[@]}"; do
	case "$name" in
	coracle)
		bin="${CARGO_TARGET_DIR:-$REPO/target}/release/coracle-runtime"
		if [[ -z "${NO_BUILD:-}" ]]; then
			step "cargo build --release -p coracle-runtime"
			ensure_packages libseccomp-dev pkg-config
			ensure_cargo
			if ! (cd "$REPO" && cargo build --release -p coracle-runtime); then
				RT_ARGS+=(--failed "coracle=cargo build --release failed")
				continue
			fi
		fi
		if [[ ! -x "$bin" ]]; then
			RT_ARGS+=(--failed "coracle=no binary at target/release/coracle-runtime")
			continue
		fi
		RT_ARGS+=(--runtime "coracle=$bin")
		rev=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
		if [[ -n "${NO_BUILD:-}" ]]; then
			VERSIONS+=("coracle-runtime (prebuilt binary, NO_BUILD=1; tree at $rev)")
		else
			VERSIONS+=("coracle-runtime $rev")
		fi
		;;
	runc | crun)
		bin=$(command -v "$name") || {
			RT_ARGS+=(--failed "$name=not installed")
			continue
		}
		RT_ARGS+=(--runtime "$name=$bin")
		VERSIONS+=("$("$bin" --version | head -n1)")
		;;
	*) die "unknown runtime '$name' (known: coracle runc crun)" ;;
	esac
done

step "bundle"
"$REPO/scripts/mkbundle.sh" "$WORK/bundle" -- /bin/true
mkdir "$WORK/state"

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
step "timed session: $ROUNDS rounds (+$WARMUP warm-up) of ${WANTED[*]}, interleaved"
# Inside the new mount namespace: drop the hybrid's cgroup2 mount (only this namespace
# sees the change, and it ends with the session), then run the timing loop.
# shellcheck disable=SC2016 # $@ is expanded by the inner shell
unshare -m --propagation private -- sh -c '
	if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
	exec python3 "$@"' sh "$REPO/bench/startup.py" \
	--bundle "$WORK/bundle" --state-dir "$WORK/state" \
	--rounds "$ROUNDS" --warmup "$WARMUP" --cgroup-parent "$CGROUP_PARENT" \
	--json "$WORK/results.json" "${RT_ARGS[@]}"

step "results"
command_line="ROUNDS=$ROUNDS WARMUP=$WARMUP RUNTIMES=\"${WANTED[*]}\" bench/runtime.sh"
os_name=$(. /etc/os-release && echo "$PRETTY_NAME")
versions=$(printf '%s; ' "${VERSIONS[@]}")
python3 "$REPO/bench/report.py" --json "$WORK/results.json" --results "$REPO/bench/RESULTS.md" \
	--date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
	--machine "$(nproc) CPUs, kernel $(uname -r), $os_name; load average before the session: $LOAD" \
	--command "$command_line" \
	--versions "${versions%; }"
echo "written to bench/RESULTS.md"
