#!/usr/bin/env bash
# Editors whose Python lacks pyzmq and msgpack, as Krita's AppImage and the Windows and macOS builds
# are: Debian 13's Krita 5.2 and GIMP 3, with python3-zmq/python3-msgpack purged. Built as an
# overlay layer on the Debian 13 root of .ci/build_trixie_root.sh; the root itself stays
# unchanged. tests/test_installer_own_python.py stacks this layer on the root (as root, idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
root="${NEURAL_STYLE_GIMP_ROOT:-/opt/neural-style-ci/trixie-root}"
layer="${NEURAL_STYLE_NODEPS_LAYER:-/opt/neural-style-ci/trixie-nodeps-layer}"
marker="$layer.ready"

if [ -f "$marker" ] && [ -f "$root/.neural-style-gimp-ready" ] && [ "$marker" -nt "$root/.neural-style-gimp-ready" ]; then
    echo "editors without pyzmq/msgpack already prepared: $layer"
    exit 0
fi
# On Debian 12 install_gimp.sh has built the root already; on Debian 13 GIMP runs on the host, so
# the root is built here for this layer only.
[ -f "$root/.neural-style-gimp-ready" ] || bash .ci/build_trixie_root.sh

rm -rf --one-file-system "$layer" "$layer.work" "$layer.merged"
mkdir -p "$layer" "$layer.work" "$layer.merged"
# In a private mount namespace: the overlay and gimp_run.sh's mounts vanish with it.
unshare --mount --propagation private bash -c '
    set -euo pipefail
    mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$2.work" "$2.merged"
    run=(env GIMP_RUN_IN_NAMESPACE=1 NEURAL_STYLE_GIMP_FORCE_ROOT=1 bash tests/support/gimp_run.sh
         --root "$2.merged" --env DEBIAN_FRONTEND=noninteractive --)
    "${run[@]}" apt-get install -y -q --no-install-recommends krita python3-pyqt5
    "${run[@]}" apt-get purge -y -q python3-zmq python3-msgpack
    "${run[@]}" apt-get clean
    if "${run[@]}" python3 -c "import zmq" 2>/dev/null || "${run[@]}" python3 -c "import msgpack" 2>/dev/null; then
        echo "install_own_python_editors.sh: zmq or msgpack still import in the layer" >&2; exit 1
    fi
    "${run[@]}" python3 -c "import gi, PyQt5.QtCore"
    echo "Krita $("${run[@]}" dpkg-query -W -f="\${Version}" krita) and GIMP 3 without pyzmq/msgpack (Python $("${run[@]}" python3 -c "import sys; print(sys.version.split()[0])"))"
' _ "$root" "$layer"
rm -rf "$layer.work" && rmdir "$layer.merged"
touch "$marker"
