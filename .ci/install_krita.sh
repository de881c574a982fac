#!/usr/bin/env bash
# Install Krita, Xvfb and the Python modules Krita's embedded Python needs for the editor tests
# (as root, idempotent; Debian 12 gives Krita 5.1 + Python 3.11, Debian 13 Krita 5.2 + Python 3.13).
# Krita embeds the distribution's Python, so zmq/msgpack/PyQt5 must come from apt, not pip.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(krita python3-pyqt5 python3-zmq python3-msgpack xvfb xauth)

missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "Krita already installed: $(dpkg-query -W -f='${Version}' krita)"
else
    echo "installing: ${missing[*]}"
    # Package lists may be empty on a fresh machine (.ci/run updates them; a lone call may not have).
    if ! apt-cache policy krita 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt-get update -qq
    fi
    apt-get install -y "${missing[@]}"
fi

# What the tests rely on: the tools on the system PATH and the modules in the system Python.
for tool in krita xvfb-run xauth timeout; do
    PATH=/usr/bin:/bin command -v "$tool" >/dev/null || { echo "install_krita.sh: $tool is missing" >&2; exit 1; }
done
/usr/bin/python3 -c 'import PyQt5.QtCore, zmq, msgpack' || {
    echo "install_krita.sh: the system Python (Krita's) cannot import PyQt5, zmq and msgpack" >&2; exit 1; }
echo "Krita $(dpkg-query -W -f='${Version}' krita) ready (system Python $(/usr/bin/python3 -c 'import sys; print(sys.version.split()[0])'))"
