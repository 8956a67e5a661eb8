#!/usr/bin/env bash
# Build a deterministic OCI bundle for tests, demos and benchmarks.
#
#   scripts/mkbundle.sh OUT_DIR [-- ARGS...]
#
# Makes OUT_DIR/rootfs (a busybox root file system from Debian's busybox-static) and
# OUT_DIR/config.json (scripts/bundle-config.json, with process.args replaced by ARGS
# when given). Two runs produce byte-identical trees: fixed owners, modes and an mtime
# of the Unix epoch on every entry, so a later `tar --sort=name` is reproducible too.
# Re-running into an existing OUT_DIR replaces rootfs and config.json cleanly.
#
# Environment: CORACLE_BUSYBOX  busybox binary to copy (default /bin/busybox, from
#                               the busybox-static package, which is installed if missing).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

TEMPLATE="$SCRIPT_DIR/bundle-config.json"
EPOCH=0

usage() {
	echo "usage: $0 OUT_DIR [-- ARGS...]" >&2
	exit 2
}

# --- root file system builders ---------------------------------------------------
# Each builder fills an empty directory. The busybox one is the only source today; an
# OCI image layout source will sit next to it and share rootfs_normalize.

# The directories every root file system here has, with their modes.
rootfs_skeleton() {
	local root=$1 dir
	for dir in bin sbin usr usr/bin usr/sbin etc proc sys dev root var run home tmp; do
		mkdir -p "$root/$dir"
		chmod 0755 "$root/$dir"
	done
	chmod 0700 "$root/root"
	chmod 1777 "$root/tmp"
}

# Minimal account databases: root and nobody, plus the tty group that the devpts
# mount in the config (gid=5) refers to.
rootfs_accounts() {
	local root=$1
	cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
	cat >"$root/etc/group" <<'GROUP'
root:x:0:
tty:x:5:
nogroup:x:65534:
GROUP
	chmod 0644 "$root/etc/passwd" "$root/etc/group"
}

# /bin/busybox and one absolute symlink per applet, in sorted order.
rootfs_busybox() {
	local root=$1 busybox=$2 applet
	install -m 0755 "$busybox" "$root/bin/busybox"
	while IFS= read -r applet; do
		[[ -n "$applet" && "$applet" != bin/busybox ]] || continue
		mkdir -p "$root/$(dirname "$applet")"
		ln -s /bin/busybox "$root/$applet"
	done < <("$busybox" --list-full | LC_ALL=C sort)
}

# Fixed owners and an epoch mtime on every entry (symlinks themselves, not targets).
rootfs_normalize() {
	local root=$1
	chown -hR 0:0 "$root"
	find "$root" -exec touch -h -d "@$EPOCH" {} +
}

build_rootfs_busybox() {
	local root=$1
	local busybox=${CORACLE_BUSYBOX:-/bin/busybox}
	if [[ -z "${CORACLE_BUSYBOX:-}" ]]; then
		ensure_packages busybox-static
	fi
	[[ -x "$busybox" ]] || die "busybox binary not found at $busybox"
	rootfs_skeleton "$root"
	rootfs_accounts "$root"
	rootfs_busybox "$root" "$busybox"
	rootfs_normalize "$root"
}

# --- config.json -------------------------------------------------------------------

# write_config OUT_FILE [ARGS...]: the template, with process.args = ARGS if any.
write_config() {
	local out=$1
	shift
	if (($# > 0)); then
		# One --arg per argument, so any argument (even "-c", or one with
		# newlines) arrives intact and in order.
		local jq_args=() i=0 arg
		for arg in "$@"; do
			jq_args+=(--arg "a$i" "$arg")
			i=$((i + 1))
		done
		jq "${jq_args[@]}" --argjson n "$#" \
			'.process.args = [range(0; $n) as $i | $ARGS.named["a\($i)"]]' \
			"$TEMPLATE" >"$out"
	else
		jq . "$TEMPLATE" >"$out"
	fi
	chmod 0644 "$out"
	touch -d "@$EPOCH" "$out"
}

main() {
	(($# >= 1)) || usage
	local out=$1
	shift
	local args=()
	if (($# > 0)); then
		[[ $1 == -- ]] || usage
		shift
		args=("$@")
	fi
	[[ -n "$out" && "$(realpath -m "$out")" != / ]] || die "refusing to use '$out' as OUT_DIR"

	umask 022
	ensure_packages jq
	mkdir -p "$out"
	out=$(realpath "$out")

	# Never delete through a mount (a container still running on this bundle).
	local mounted
	mounted=$(mounts_under "$out/rootfs")
	[[ -z "$mounted" ]] || die "mounts under $out/rootfs; unmount them first:"$'\n'"$mounted"

	# Build next to the target, then swap, so a failed run leaves no half tree behind.
	local staging="$out/.rootfs.new"
	rm -rf "$staging"
	mkdir "$staging"
	trap 'rm -rf "$staging" "$out/.config.json.new"' EXIT
	build_rootfs_busybox "$staging"
	write_config "$out/.config.json.new" "${args[@]}"

	rm -rf "$out/rootfs"
	mv "$staging" "$out/rootfs"
	mv "$out/.config.json.new" "$out/config.json"
	trap - EXIT
}

main "$@"
