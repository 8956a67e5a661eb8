#!/usr/bin/env bash
# Build an OCI image layout for tests, demos and benchmarks (Debian's umoci does the writing).
#
#   scripts/mkimage.sh LAYOUT_DIR TAG [options] [-- CMD...]
#
# The image's first layer is the busybox root file system of scripts/mkbundle.sh. Options:
#   --layers N       add N more layers of filler data (default 0)
#   --layer-mb M     size of each filler layer in MiB (default 1); incompressible data
#   --seed S         filler layers with the same seed and index are byte-identical, so two
#                    images built with one seed share those layers (default: the tag)
#   --env K=V        an Env entry of the image config (repeatable)
#   --workdir DIR    the image's WorkingDir
#   --expose PORT    an ExposedPorts entry such as 80/tcp (repeatable)
#   --label K=V      a config label (repeatable)
# CMD, when given, becomes the image's Cmd (default: sh).
#
# LAYOUT_DIR is created when missing; several tags can live in one layout. Push it to a
# registry with `skopeo copy oci:LAYOUT_DIR:TAG docker://HOST/NAME:TAG`.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
	echo "usage: $0 LAYOUT_DIR TAG [--layers N] [--layer-mb M] [--seed S] [--env K=V] [--workdir D] [--expose P] [--label K=V] [-- CMD...]" >&2
	exit 2
}

(($# >= 2)) || usage
LAYOUT=$1 TAG=$2
shift 2
LAYERS=0 LAYER_MB=1 SEED=$TAG WORKDIR=""
ENVS=() EXPOSE=() LABELS=() CMD=(sh)
while (($#)); do
	case $1 in
	--layers) LAYERS=$2; shift 2 ;;
	--layer-mb) LAYER_MB=$2; shift 2 ;;
	--seed) SEED=$2; shift 2 ;;
	--env) ENVS+=("$2"); shift 2 ;;
	--workdir) WORKDIR=$2; shift 2 ;;
	--expose) EXPOSE+=("$2"); shift 2 ;;
	--label) LABELS+=("$2"); shift 2 ;;
	--) shift; (($#)) && CMD=("$@"); break ;;
	*) usage ;;
	esac
done
[[ $LAYERS =~ ^[0-9]+$ && $LAYER_MB =~ ^[0-9]+$ ]] || die "--layers and --layer-mb take whole numbers"

command -v umoci >/dev/null || ensure_packages umoci
command -v openssl >/dev/null || ensure_packages openssl

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Layer 0: the same busybox tree the bundles use.
"$SCRIPT_DIR/mkbundle.sh" "$work/bundle" >/dev/null

[[ -f "$LAYOUT/oci-layout" ]] || umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:$TAG"
umoci insert --image "$LAYOUT:$TAG" "$work/bundle/rootfs" /

# Filler layers: deterministic, incompressible bytes (AES-CTR keystream of the seed), so the
# compressed size is about the uncompressed size, as for real binaries.
for ((i = 1; i <= LAYERS; i++)); do
	mkdir -p "$work/fill$i/data"
	head -c "$((LAYER_MB * 1024 * 1024))" /dev/zero |
		openssl enc -aes-128-ctr -nosalt -pass "pass:$SEED-$i" -pbkdf2 >"$work/fill$i/data/layer$i.bin"
	touch -d @0 "$work/fill$i/data/layer$i.bin" "$work/fill$i/data"
	umoci insert --image "$LAYOUT:$TAG" "$work/fill$i/data" "/data"
done

config_args=(--config.cmd "${CMD[0]}")
for arg in "${CMD[@]:1}"; do config_args+=(--config.cmd "$arg"); done
for e in "${ENVS[@]}"; do config_args+=(--config.env "$e"); done
for p in "${EXPOSE[@]}"; do config_args+=(--config.exposedports "$p"); done
for l in "${LABELS[@]}"; do config_args+=(--config.label "$l"); done
[[ -n $WORKDIR ]] && config_args+=(--config.workingdir "$WORKDIR")
umoci config --image "$LAYOUT:$TAG" --os linux --architecture amd64 \
	--config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${config_args[@]}"
# `umoci config` leaves the pre-config manifest reachable only from history; drop it.
umoci gc --layout "$LAYOUT"
echo "$LAYOUT:$TAG"
