#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run). Run as root on Debian 12:
#
#   scripts/test.sh
#
# Installs the packages it needs (only the missing ones), then runs rustfmt, clippy,
# the build and the whole test suite, and finally checks that the suite left nothing
# behind: cgroups, mounts, runtime processes, links or nftables tables that were not
# there before it started. The last lines are cargo test's own summary lines.
#
# Environment:
#   CORACLE_TEST_TIMEOUT  seconds allowed for `cargo test` (default 1200)
# Exported to the tests:
#   TMPDIR                          a fresh directory, checked for leftovers afterwards
#   CORACLE_TEST_BUNDLE_SCRIPT      absolute path of scripts/mkbundle.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$REPO/scripts/lib.sh"
cd "$REPO"

PACKAGES=(libseccomp-dev busybox-static pkg-config jq iproute2 util-linux nftables procps
	# images: the test-image builder (umoci), pushing and converting images (skopeo), a real
	# registry on loopback (docker-registry), zstd layers, keys and filler data (openssl).
	umoci skopeo docker-registry zstd openssl curl)
CGROUP_PATTERN='*coracle-test*'
PROC_PREFIX='coracle:'

# ---------------------------------------------------------------------------------
step "1/7 packages and toolchain"
if [[ $EUID -ne 0 ]]; then
	echo "warning: not running as root: tests that need root will skip themselves"
fi
ensure_packages "${PACKAGES[@]}"
ensure_cargo
echo "$(cargo --version); $(rustc --version); kernel $(uname -r); $(nproc) CPUs"

step "2/7 cargo fmt --all -- --check"
cargo fmt --all -- --check || die "formatting differs: run 'cargo fmt --all'"

step "3/7 cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "4/7 cargo build --workspace"
cargo build --workspace
# Compile the test binaries now, so the test run below only runs tests (and the
# compiler's temporary files never land in the test TMPDIR that is checked later).
cargo test --workspace --no-run

# ---------------------------------------------------------------------------------
# Leftover detection: one line per thing the suite could leak. Taken before and after
# the tests; only lines that are new afterwards count, so whatever was already on the
# machine is not blamed on the suite.
WORK=$(mktemp -d)
TEST_TMP=$(mktemp -d /tmp/coracle-test.XXXXXX)
cleanup() {
	rm -rf "$WORK"
	# Never recurse through a mount the suite left behind; it is reported instead.
	if [[ -d "$TEST_TMP" && -z "$(mounts_under "$TEST_TMP")" ]]; then
		rm -rf "$TEST_TMP"
	fi
}
trap cleanup EXIT

snapshot() {
	local pid argv0 root
	{
		find /sys/fs/cgroup/ -mindepth 2 -type d -name "$CGROUP_PATTERN" 2>/dev/null |
			sed 's/^/cgroup /'

		awk -v t="$TEST_TMP" 'index($0, "coracle") || index($0, t) {
			sep = 7; while ($sep != "-") sep++
			print "mount " $5 " type " $(sep + 1) " source " $(sep + 2)
		}' /proc/self/mountinfo

		for pid in /proc/[0-9]*; do
			pid=${pid#/proc/}
			argv0=
			{ IFS= read -r -d "" argv0 <"/proc/$pid/cmdline"; } 2>/dev/null || true
			# The runtime names its processes with prctl(PR_SET_NAME), which sets
			# comm ("coracle:[2:INIT"), not argv; check both.
			comm=$(cat "/proc/$pid/comm" 2>/dev/null) || comm=
			# A test registry the suite started and did not stop.
			if [[ "$comm" == docker-registry ]]; then
				echo "process $pid docker-registry $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
				continue
			fi
			if [[ "$argv0" == "$PROC_PREFIX"* || "$comm" == "$PROC_PREFIX"* ]]; then
				echo "process $pid ${comm:-$argv0}"
				continue
			fi
			# A container process from the suite, already exec'd into its command,
			# still has its root inside the test temp directory.
			root=$(readlink "/proc/$pid/root" 2>/dev/null) || continue
			if [[ "$root" == "$TEST_TMP"* ]]; then
				echo "process $pid ${argv0:-?} (root $root)"
			fi
		done

		ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /coracle/ {print "link " $2}'
		nft list tables 2>/dev/null | awk '/coracle/ {print "nftables " $0}'
	} | LC_ALL=C sort -u
}

new_leftovers() {
	snapshot >"$WORK/after"
	LC_ALL=C comm -13 "$WORK/before" "$WORK/after"
	find "$TEST_TMP" -mindepth 1 -maxdepth 1 -printf 'temp %p\n' 2>/dev/null | LC_ALL=C sort
}

step "5/7 snapshot before the tests"
snapshot >"$WORK/before"
echo "$(wc -l <"$WORK/before") pre-existing matching entries (not counted against the suite)"

# ---------------------------------------------------------------------------------
step "6/7 cargo test --workspace"
set +e
TMPDIR="$TEST_TMP" CORACLE_TEST_BUNDLE_SCRIPT="$REPO/scripts/mkbundle.sh" \
	timeout -k 30 "${CORACLE_TEST_TIMEOUT:-1200}" cargo test --workspace 2>&1 |
	tee "$WORK/test.log"
test_rc=${PIPESTATUS[0]}
set -e

step "7/7 leftover check"
# Processes and cgroups go away asynchronously (a killed container is reaped a moment
# later), so give them a few seconds before judging.
for _ in $(seq 1 10); do
	new_leftovers >"$WORK/leftovers"
	[[ -s "$WORK/leftovers" ]] || break
	sleep 0.5
done
leftover_rc=0
if [[ -s "$WORK/leftovers" ]]; then
	leftover_rc=1
	echo "FAILED: the test suite left these behind:"
	sed 's/^/  /' "$WORK/leftovers"
	# What a leftover temp directory holds names the test that made it.
	sed -n 's/^temp //p' "$WORK/leftovers" | while IFS= read -r dir; do
		echo "  $dir holds:"
		find "$dir" -mindepth 1 -maxdepth 3 -printf '    %P\n' 2>/dev/null | LC_ALL=C sort | head -n 30
	done
	if [[ -n "$(mounts_under "$TEST_TMP")" ]]; then
		echo "  ($TEST_TMP is kept because mounts remain under it)"
	fi
else
	echo "ok: no cgroups, mounts, processes, links, nftables tables or temp files left behind"
fi

# ---------------------------------------------------------------------------------
echo
if ((test_rc == 124 || test_rc == 137)); then
	echo "FAILED: cargo test timed out after ${CORACLE_TEST_TIMEOUT:-1200}s"
elif ((test_rc != 0)); then
	echo "FAILED: cargo test exited with status $test_rc"
fi
((leftover_rc == 0)) || echo "FAILED: leftovers (see the leftover check above)"
((test_rc != 0 || leftover_rc != 0)) || echo "PASSED: fmt, clippy, build, tests, leftover check"
echo "cargo test summary:"
grep -E '^ *(Running|Doc-tests) |^test result:' "$WORK/test.log" || echo "(no test results: see the log above)"
((test_rc == 0 && leftover_rc == 0))
