"""Every step that can succeed does: offline weights still leave engine, plugins, engine.json and service
installed (one NOT FINISHED line, exit 1), --check then flags only the weights, and a later --weights
run installs just them. Bad input (a damaged weights file, a read-only plugins folder, a full disk)
gets one clear line and leaves the previous install working. --check lists every editor found."""

import os
import shutil
import subprocess

import pytest

from tests.support.skips import skip_or_fail
from tests.test_installer_helpers import checkout, snapshot, user  # noqa: F401 (fixtures)

DEAD_URL = "http://127.0.0.1:9/vgg19.h5"   # the discard port: nothing answers


def fail_rows(output):
    return [line for line in output.splitlines() if "  FAIL  " in line]


def last_line(output):
    return [line for line in output.splitlines() if line.strip()][-1]


def plugin_without_weights_says_how_to_finish(user, monkeypatch):
    """What a plugin does: its client starts the engine with engine.json; the artist gets one sentence
    about the weights, and Details name the command."""
    from shared.client import Client
    from shared.explain import explain
    for name, value in user.env.items():
        monkeypatch.setenv(name, value)
    endpoint = "ipc://" + os.path.join(user.env["XDG_RUNTIME_DIR"], "plugin.sock")
    with pytest.raises(Exception) as error:
        with Client(endpoint, autostart=True, start_timeout=60.0) as client:
            client.status()
    explanation = explain(error.value)
    assert "weights" in explanation.summary and explanation.summary.count(".") == 1, explanation.summary
    assert "python3 installer.py --weights FILE" in explanation.details, explanation.details


def test_offline_weights_leave_everything_else_installed_and_a_later_run_finishes(user, fake_weights, monkeypatch):
    user.fake_editors()
    done = user.run("--reuse-env", "--weights-url", DEAD_URL)
    assert done.returncode == 1, done.output
    # without weights the engine cannot start: the service is registered, started by the finishing run
    assert "registered, not started yet: it needs the weights" in done.output
    assert "Traceback" not in done.output
    for part in (os.path.join(user.pykrita, "neural_style"), os.path.join(user.gimp_plugins, "neural_style"),
                 user.engine_json, user.unit):
        assert os.path.exists(part), (part, done.output)
    assert not os.path.exists(user.weights)
    assert last_line(done.output) == ("NOT FINISHED, missing: the VGG-19 weights (the other parts are installed). "
                                      "To finish: python3 installer.py --weights FILE"), done.output

    check = user.run("--check")
    assert check.returncode == 1
    rows = fail_rows(check.output)
    assert len(rows) == 1 and "VGG-19 weights" in rows[0], check.output
    assert "python3 installer.py --weights FILE" in check.output
    plugin_without_weights_says_how_to_finish(user, monkeypatch)

    plugins_before = snapshot(os.path.join(user.pykrita, "neural_style"))
    finish = user.run("--reuse-env", "--weights", fake_weights, "--no-verify")
    assert finish.returncode == 0, finish.output
    assert "installing only them" in finish.output and "[1] VGG-19 weights" in finish.output
    assert "Plugins" not in finish.output and "Engine environment" not in finish.output   # not redone
    assert "Background service: starting it now that the weights are there" in finish.output
    assert snapshot(os.path.join(user.pykrita, "neural_style")) == plugins_before
    assert os.path.exists(user.weights)
    assert not fail_rows(user.run("--check").output)


def test_the_engine_says_how_to_finish_when_the_weights_are_missing(tmp_path):
    from engine_server.core.errors import WeightsError
    from engine_server.core.weights import check_weights_file
    with pytest.raises(WeightsError) as error:
        check_weights_file(str(tmp_path / "vgg19.h5"))
    assert "python3 installer.py --weights FILE" in error.value.message


def test_a_damaged_weights_file_is_refused_and_the_installed_one_kept(user, fake_weights, tmp_path):
    user.fake_editors()
    user.install(fake_weights)
    before = snapshot(os.path.dirname(user.weights))
    damaged = str(tmp_path / "damaged.h5")
    with open(fake_weights, "rb") as f, open(damaged, "wb") as g:
        g.write(f.read()[: 1 << 20])
    done = user.run("--reuse-env", "--weights", damaged, "--no-start")
    assert done.returncode == 1 and "Traceback" not in done.output
    errors = [line for line in done.output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "md5" in errors[0] and damaged in errors[0], done.output
    assert "the ones installed before are kept" in last_line(done.output)
    assert snapshot(os.path.dirname(user.weights)) == before
    assert user.run("--check").returncode == 0


def in_namespace(user, script, *args):
    """Run `script` (bash, $@ = the installer command) in a private mount namespace."""
    command = ["unshare", "--mount", "--propagation", "private", "bash", "-c", script, "_"] + list(args)
    done = subprocess.run(command, env=user.env, cwd=user.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300)
    done.output = done.stdout
    return done


@pytest.fixture
def root_for_mounts():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        skip_or_fail("mounts (read-only bind, small tmpfs) need root and unshare")


needs_root = pytest.mark.usefixtures("root_for_mounts")


@needs_root
def test_a_read_only_plugins_folder_is_one_line_and_the_old_plugin_stays(user, fake_weights):
    import sys
    user.fake_editors()
    user.install(fake_weights)
    gimp_plugin = os.path.join(user.gimp_plugins, "neural_style")
    before = snapshot(gimp_plugin)
    installer = [sys.executable, os.path.join(user.checkout, "installer.py"), "--reuse-env", "--no-start",
                 "--weights", fake_weights, "--no-verify"]
    done = in_namespace(user, 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && "$@"',
                        user.gimp_plugins, *installer)
    assert done.returncode == 1 and "Traceback" not in done.output, done.output
    errors = [line for line in done.output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and user.gimp_plugins in errors[0] and "Read-only" in errors[0], done.output
    assert "the plugin that was there is unchanged" in errors[0]
    assert snapshot(gimp_plugin) == before
    assert "Krita (native) plugin 0.1.0 ->" in done.output     # the other editor still got it
    assert "NOT FINISHED, missing: the GIMP 3 (native) plugin" in last_line(done.output)


@needs_root
def test_a_full_disk_is_one_line_and_the_old_plugin_stays(user, fake_weights):
    import sys
    user.fake_editors()
    user.install(fake_weights, "--no-gimp")
    size = sum(os.stat(os.path.join(r, n)).st_blocks * 512    # what it takes on disk (whole blocks)
               for r, dirs, names in os.walk(os.path.join(user.pykrita, "neural_style")) for n in dirs + names)
    installer = [sys.executable, os.path.join(user.checkout, "installer.py"), "--reuse-env", "--no-start",
                 "--no-gimp", "--weights", fake_weights, "--no-verify"]
    copy = os.path.join(user.root, "after")
    # room for one plugin, not for the second copy an upgrade builds next to it
    script = ('mount -t tmpfs -o size=%d tmpfs "$1" && shift && "$@" > "$0.first" 2>&1; "$@"; code=$?; '
              'cp -a "%s" "%s"; exit $code' % (size * 7 // 5, os.path.join(user.pykrita, "neural_style"),
                                               copy))
    done = in_namespace(user, script.replace('"$0.first"', os.path.join(user.root, "first.log")),
                        user.pykrita, *installer)
    with open(os.path.join(user.root, "first.log")) as f:
        first = f.read()
    assert "Krita (native) plugin 0.1.0 ->" in first, first
    assert done.returncode == 1 and "Traceback" not in done.output, done.output
    errors = [line for line in done.output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "No space left on device" in errors[0], done.output
    assert os.path.isfile(os.path.join(copy, "install_info.json")) and os.path.isdir(os.path.join(copy, "shared"))
    assert not [name for name in os.listdir(os.path.dirname(copy)) if name.endswith(".installing")]


def test_check_lists_every_editor_found_and_the_summary_names_only_those(user, fake_weights):
    os.makedirs(os.path.join(user.data, "krita"))        # Krita only
    env_path = user.env["PATH"]
    user.env["PATH"] = "/nonexistent"                    # this host's own krita / gimp-3.0 are not "found"
    try:
        import sys
        done = user.run("--reuse-env", "--weights", fake_weights, "--no-verify", "--no-start", python=sys.executable)
        check = user.run("--check", python=sys.executable)
    finally:
        user.env["PATH"] = env_path
    assert done.returncode == 0, done.output
    assert last_line(done.output).startswith("Done. Restart Krita;"), done.output
    assert "GIMP" not in last_line(done.output)
    krita_rows = [line for line in check.output.splitlines() if line.strip().startswith("Krita (native)")]
    assert len(krita_rows) == 1 and "plugin 0.1.0" in krita_rows[0], check.output
    assert "pyzmq/msgpack for it" in check.output
    assert "GIMP" not in check.output
