#!/usr/bin/env bash
# What the tests need besides the editors and the engine, so that nothing skips in CI (a skip fails
# there: tests/support/skips.py): Python 3.8 and 3.9 for the installer's "old Python" tests, and
# Debian's own Python with python3-zmq/python3-msgpack (the client as Krita's embedded Python runs it).
set -euo pipefail

apt-get install -y -q --no-install-recommends python3-zmq python3-msgpack util-linux

have_python() {   # the places tests/test_installer_flow.py looks
    local candidate
    for candidate in ~/.pyenv/versions/"$1".*/bin/python"$1" /usr/bin/python"$1" /usr/local/bin/python"$1"; do
        [ -x "$candidate" ] && return 0
    done
    return 1
}
for version in 3.8 3.9; do
    # Debian ships neither and nothing may be downloaded outside the package registries: this kind of
    # machine brings them (pyenv). Without them the installer's "old Python" tests fail, as they must.
    have_python "$version" || echo "install_test_tools.sh: no Python $version on this machine" >&2
done
