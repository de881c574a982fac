#!/usr/bin/env bash
# Install GIMP 3 with Python plug-in support for the editor tests (as root, idempotent).
#   Debian 13+: from apt, on the host.
#   Debian 12:  GIMP 3 is not packaged, so build a Debian 13 root ($NEURAL_STYLE_GIMP_ROOT,
#               default /opt/neural-style-ci/trixie-root) and install it there; tests run it with
#               tests/support/gimp_run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
packages=(gimp gir1.2-gimp-3.0 python3-gi python3-zmq python3-msgpack)
root="${NEURAL_STYLE_GIMP_ROOT:-/opt/neural-style-ci/trixie-root}"
major=$(. /etc/os-release && echo "${VERSION_ID:-0}" | cut -d. -f1)

if [ "${major:-0}" -ge 13 ] 2>/dev/null; then
    # GIMP runs plug-ins with the distribution's Python, whatever python3 is first on PATH.
    if command -v gimp-console-3.0 >/dev/null && /usr/bin/python3 -c 'import gi, zmq, msgpack' 2>/dev/null; then
        echo "GIMP 3 already installed: $(gimp-console-3.0 --version 2>/dev/null | head -1)"
        exit 0
    fi
    apt-get install -y --no-install-recommends "${packages[@]}"
    exit 0
fi

if [ "${major:-0}" != 12 ]; then
    echo "install_gimp.sh: Debian 12 or 13 expected, found $(cat /etc/debian_version)" >&2
    exit 1
fi

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
