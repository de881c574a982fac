#!/usr/bin/env bash
# What the tests need besides the editors and the engine, so that nothing skips in CI (a skip fails
# there: tests/support/skips.py): Python 3.8 and 3.9 for the installer's "old Python" tests, and
# Debian's own Python with python3-zmq/python3-msgpack (the client as Krita's embedded Python runs it).
set -euo pipefail

apt-get install -y -q --no-install-recommends python3-zmq python3-msgpack util-linux

have_python() {   # the places tests/test_installer_flow.py looks
    ls ~/.pyenv/versions/"$1".*/bin/python"$1" /usr/bin/python"$1" /usr/local/bin/python"$1" >/dev/null 2>&1
}
missing=()
for version in 3.8 3.9; do
    have_python "$version" || missing+=("$version")
done
if [ ${#missing[@]} -gt 0 ]; then
    # Debian ships neither; uv fetches CPython builds made for exactly this.
    python3 -m pip install -q --break-system-packages uv
    python3 -m uv python install "${missing[@]}"
    for version in "${missing[@]}"; do
        ln -sf "$(python3 -m uv python find "$version")" /usr/local/bin/python"$version"
        /usr/local/bin/python"$version" -c 'import sys; print(sys.version)'
    done
fi
