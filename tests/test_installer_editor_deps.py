"""pyzmq and msgpack for an editor that bundles its own Python: wheels for that Python are
downloaded (from the package index pip is configured with) and unpacked into the plugin's vendor/
folder, which the plugin puts first on sys.path. Here the "bundled" Python is the one running the
tests, so the import can be proven."""

import os
import subprocess
import sys

import pytest

from tests.test_installer_helpers import checkout, snapshot, user  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

IMPORT_CHECK = """
import sys
folder = sys.argv[1]
sys.path.insert(0, folder)
import zmq, msgpack
assert zmq.__file__.startswith(folder) and msgpack.__file__.startswith(folder), (zmq.__file__, msgpack.__file__)
socket = zmq.Context.instance().socket(zmq.DEALER)      # the compiled part works
socket.close(0)
assert msgpack.unpackb(msgpack.packb({"v": 1})) == {"v": 1}
print("imported from", folder)
"""


def test_wheels_for_the_editors_python_are_placed_where_it_imports_from(user, fake_weights):
    user.fake_editors()
    before = snapshot(user.root)
    version = "%d.%d" % sys.version_info[:2]
    done = user.run("--reuse-env", "--weights", fake_weights, "--no-verify", "--no-service",
                    "--krita-python", version, "--gimp-python", version, timeout=600)
    assert done.returncode == 0, done.output
    for folder in (os.path.join(user.pykrita, "neural_style", "vendor"),
                   os.path.join(user.gimp_plugins, "neural_style", "vendor")):
        # -S -I: no site-packages, no PYTHONPATH: only the unpacked wheels can satisfy the imports
        probe = subprocess.run([sys.executable, "-S", "-I", "-c", IMPORT_CHECK, folder], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
        assert probe.returncode == 0, probe.stdout

    assert user.run("--uninstall").returncode == 0
    # pip itself may leave its own caches in HOME (on this machine also ~/.rustup): not installer files
    after = {p: v for p, v in snapshot(user.root).items()
             if not p.startswith((os.path.join("home", ".cache"), os.path.join("home", ".rustup")))}
    assert after == before
