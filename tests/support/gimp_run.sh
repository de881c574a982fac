#!/usr/bin/env bash
# Run a command where GIMP 3 lives: directly on a host that has gimp-console-3.0 (Debian 13),
# otherwise inside the Debian 13 root made by .ci/install_gimp.sh (Debian 12).
#
#   gimp_run.sh [--root DIR] [--env NAME=VALUE]... [--bind HOSTDIR:ROOTDIR]... -- COMMAND [ARG]...
#
# Inside the root the command gets a clean environment (`env -i` plus the --env values), so the
# host's PATH and Python never leak in. proc, sys, /dev and /dev/pts are mounted in a private mount
# namespace (unshare), so they vanish with this process even if it is killed; the trap unmounts them
# as well. The root shares the host's network: an engine on the host's 127.0.0.1 is reachable.
set -euo pipefail

root="${NEURAL_STYLE_GIMP_ROOT:-/opt/neural-style-ci/trixie-root}"
envs=(PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
binds=()
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="$2"; shift 2 ;;
        --env) envs+=("$2"); shift 2 ;;
        --bind) binds+=("$2"); shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "gimp_run.sh: no command given" >&2; exit 2; }

if command -v gimp-console-3.0 >/dev/null 2>&1 && [ "${NEURAL_STYLE_GIMP_FORCE_ROOT:-}" != 1 ]; then
    for bind in "${binds[@]+"${binds[@]}"}"; do
        [ "${bind%%:*}" = "${bind#*:}" ] || { echo "gimp_run.sh: --bind needs the root at $root" >&2; exit 2; }
    done
    exec env -i "${envs[@]}" "$@"
fi

if [ ! -x "$root/usr/bin/env" ] || { [ "$1" = gimp-console-3.0 ] && [ ! -x "$root/usr/bin/gimp-console-3.0" ]; }; then
    echo "gimp_run.sh: GIMP 3 is not installed here nor in $root; run: bash .ci/install_gimp.sh" >&2
    exit 3
fi

if [ -z "${GIMP_RUN_IN_NAMESPACE:-}" ]; then
    # Re-run this script in a private mount namespace: its mounts can never outlive it.
    export GIMP_RUN_IN_NAMESPACE=1
    args=(--root "$root")
    for e in "${envs[@]:2}"; do args+=(--env "$e"); done
    for b in "${binds[@]+"${binds[@]}"}"; do args+=(--bind "$b"); done
    exec unshare --mount --propagation private "$0" "${args[@]}" -- "$@"
fi

mounted=()
cleanup() {
    local i
    for (( i=${#mounted[@]}-1; i>=0; i-- )); do
        umount -l "${mounted[$i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM HUP

mount_at() {   # mount_at TARGET MOUNT-ARGS...
    local target="$1"; shift
    mkdir -p "$target"
    mount "$@" "$target"
    mounted+=("$target")
}
mount_at "$root/proc" -t proc proc
mount_at "$root/sys" -t sysfs sysfs
mount_at "$root/dev" --bind /dev
mount_at "$root/dev/pts" --bind /dev/pts
for bind in "${binds[@]+"${binds[@]}"}"; do
    mount_at "$root/${bind#*:}" --bind "${bind%%:*}"
done

set +e
chroot "$root" /usr/bin/env -i "${envs[@]}" "$@"
status=$?
set -e
exit $status
