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

bash .ci/build_trixie_root.sh
