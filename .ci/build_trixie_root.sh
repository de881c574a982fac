#!/usr/bin/env bash
# Build the Debian 13 (trixie) root with GIMP 3 and its Python modules ($NEURAL_STYLE_GIMP_ROOT,
# default /opt/neural-style-ci/trixie-root), as root, idempotent. On Debian 12 GIMP 3 runs from it;
# on both Debian 12 and 13 the editors-without-pyzmq layer (.ci/install_own_python_editors.sh) is
# built on it. Tests run programs inside it with tests/support/gimp_run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
packages=(gimp gir1.2-gimp-3.0 python3-gi python3-zmq python3-msgpack)
root="${NEURAL_STYLE_GIMP_ROOT:-/opt/neural-style-ci/trixie-root}"

marker="$root/.neural-style-gimp-ready"
if [ -f "$marker" ] && [ -x "$root/usr/bin/gimp-console-3.0" ]; then
    echo "GIMP 3 root already complete: $root"
    exit 0
fi

# The Debian mirror this machine's apt already uses (its first non-security URIs/deb line).
mirror=$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
         | awk '{print $2}' | grep -v security | head -1 || true)
mirror="${mirror:-http://deb.debian.org/debian}"
security="${mirror%/debian}/debian-security"

if [ -d "$root/debootstrap" ]; then
    # An interrupted debootstrap cannot be resumed. Nothing may be mounted inside before deleting:
    # gimp_run.sh mounts only in private namespaces, and --one-file-system guards the rest.
    if grep -q " $root/" /proc/mounts; then
        echo "install_gimp.sh: something is mounted under $root; unmount it first" >&2
        exit 1
    fi
    echo "removing the incomplete root $root"
    rm -rf --one-file-system "$root"
fi

if [ ! -x "$root/usr/bin/apt-get" ]; then
    command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap
    mkdir -p "$(dirname "$root")"
    debootstrap --variant=minbase trixie "$root" "$mirror"
fi

cat > "$root/etc/apt/sources.list" <<EOF
deb $mirror trixie main
deb $mirror trixie-updates main
deb $security trixie-security main
EOF
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

run_in_root=(bash tests/support/gimp_run.sh --root "$root" --env DEBIAN_FRONTEND=noninteractive --)
NEURAL_STYLE_GIMP_FORCE_ROOT=1 "${run_in_root[@]}" apt-get update -qq
NEURAL_STYLE_GIMP_FORCE_ROOT=1 "${run_in_root[@]}" \
    apt-get install -y -q --no-install-recommends "${packages[@]}"
NEURAL_STYLE_GIMP_FORCE_ROOT=1 "${run_in_root[@]}" apt-get clean
NEURAL_STYLE_GIMP_FORCE_ROOT=1 "${run_in_root[@]}" python3 -c 'import gi, zmq, msgpack'
touch "$marker"
echo "GIMP 3 installed in $root: $(NEURAL_STYLE_GIMP_FORCE_ROOT=1 "${run_in_root[@]}" gimp-console-3.0 --version | head -1)"
