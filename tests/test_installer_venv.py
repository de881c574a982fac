"""The real thing: installer.py builds the engine's virtual environment from the project's sources.

`--system-site-packages` lets the venv see the packages already installed for the Python that runs
the tests (TensorFlow among them), so pip finds the pinned versions satisfied instead of downloading
hundreds of MB; the engine itself is still built from the checkout and installed into the venv.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.test_installer_helpers import checkout, files_under, user  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def test_installer_builds_a_real_venv_with_the_engine_and_uninstalls_it(user, fake_weights):
    user.fake_editors()
    prefix = os.path.join(user.home, ".local", "share", "neural-style", "venv")   # the default place
    done = user.run("--system-site-packages", "--weights", fake_weights, "--no-verify", "--no-start")
    assert done.returncode == 0, done.output
    assert "Successfully installed neural-style-engine-0.1.0" in done.output

    python = os.path.join(prefix, "bin", "python")
    with open(user.engine_json) as f:
        assert json.load(f)["command"] == [python, "-m", "engine_server"]
    env = {k: v for k, v in user.env.items() if k != "PYTHONPATH"}     # the venv alone, not the checkout
    probe = subprocess.run([python, "-c", "import engine_server, shared, sys; "
                                          "print(list(engine_server.__path__)[0]); print(sys.prefix)"],
                           cwd=user.root, env=env, stdout=subprocess.PIPE, universal_newlines=True, timeout=120)
    engine_folder, venv_prefix = probe.stdout.split()
    assert venv_prefix == prefix
    assert engine_folder.startswith(os.path.join(prefix, "lib"))
    installed_shared = files_under(os.path.join(os.path.dirname(engine_folder), "shared"))
    assert [p for p in installed_shared if p.endswith(".py")] == files_under(os.path.join(user.checkout, "shared"))

    # The engine the plugins would start (engine.json's command) runs with the installed weights.
    started = subprocess.run([python, "-m", "engine_server", "start", "--timeout", "240"], cwd=user.root, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    try:
        assert started.returncode == 0, started.stdout
        check = user.run("--check", timeout=400)
        assert check.returncode == 0, check.output
        engine_row = next(line for line in check.output.splitlines() if line.strip().startswith("engine Python"))
        device_row = next(line for line in check.output.splitlines() if line.strip().startswith("TensorFlow device"))
        reachable_row = next(line for line in check.output.splitlines() if line.strip().startswith("engine reachable"))
        assert " ok " in engine_row and prefix in engine_row, check.output
        assert " ok " in device_row and "CPU" in device_row, check.output
        assert " ok " in reachable_row, check.output

        again = user.run("--system-site-packages", "--weights", fake_weights, "--no-verify", "--no-start")
        assert again.returncode == 0 and "already there: upgrading it in place" in again.output, again.output

        gone = user.run("--uninstall")                 # stops the engine, then removes everything
        assert gone.returncode == 0, gone.output
    finally:
        if os.path.exists(python):
            subprocess.run([python, "-m", "engine_server", "stop"], cwd=user.root, env=env, timeout=60)
    status = subprocess.run([sys.executable, "-m", "engine_server", "status"], cwd=user.root, env=user.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert status.returncode != 0, status.stdout
    assert not os.path.exists(prefix) and not os.path.exists(user.engine_json) and not os.path.exists(user.weights)
    # What may remain is what the engine wrote while it ran (its logs), and what third-party tools write
    # into HOME on their own (Keras its ~/.keras/keras.json on import, pip caches): nothing installed.
    leftovers = [p for p in files_under(user.home) if not p.startswith((".keras/", ".cache/", ".rustup/"))]
    assert all(os.path.basename(p).startswith("engine") and p.endswith(".log") for p in leftovers), leftovers


def test_dev_installs_the_engine_editable_into_the_running_python(user, tmp_path):
    """What `.ci/run` does (`installer.py --dev`), inside a scratch venv standing in for CI's Python."""
    scratch = str(tmp_path / "ci-python")
    subprocess.run([os.environ.get("PYTHON", "python3"), "-m", "venv", "--system-site-packages", scratch],
                   check=True, timeout=120)
    python = os.path.join(scratch, "bin", "python")
    done = user.run("--dev", "--no-weights", "--no-plugins", "--no-service", python=python, timeout=600)
    assert done.returncode == 0, done.output
    env = {k: v for k, v in user.env.items() if k != "PYTHONPATH"}
    probe = subprocess.run([python, "-c", "import engine_server; print(list(engine_server.__path__)[0])"],
                           cwd=user.root, env=env, stdout=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert probe.stdout.strip() == os.path.join(user.checkout, "engine_server")   # editable: the checkout runs
    with open(user.engine_json) as f:
        assert json.load(f)["command"] == [python, "-m", "engine_server"]
