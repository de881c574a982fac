"""installer.py run for real (a subprocess) for a throwaway user with fake editor folders:
what lands where, the kritarc edit, the service unit, re-runs, --check and --uninstall."""

import json
import os
import stat
import sys

from installing.project import VERSION
from tests.support.skips import skip_or_fail
from tests.test_installer_helpers import checkout, files_under, snapshot, user  # noqa: F401 (fixtures)

KRITARC = ("[General]\r\nfoo=1\r\n\r\n"          # CRLF on purpose: it must survive
           "[python]\r\nenable_other_plugin=false\r\n\r\n"
           "[MainWindow]\r\nState=AAAA==\r\nlast=1")   # and no newline at the end


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(text)


def read(path):
    with open(path, newline="") as f:
        return f.read()


def test_install_puts_every_part_in_place(user, fake_weights):
    user.fake_editors()
    write(user.kritarc, KRITARC)
    done = user.install(fake_weights)

    # Krita: the .desktop file, the package, shared/ inside it, enabled in kritarc.
    assert os.path.isfile(os.path.join(user.pykrita, "neural_style.desktop"))
    krita_plugin = os.path.join(user.pykrita, "neural_style")
    assert files_under(os.path.join(krita_plugin, "shared")) == files_under(os.path.join(user.checkout, "shared"))
    source_files = files_under(os.path.join(user.checkout, "plugin_krita", "neural_style"))
    assert set(source_files) <= set(files_under(krita_plugin))
    assert read(user.kritarc) == KRITARC.replace(
        "enable_other_plugin=false\r\n", "enable_other_plugin=false\r\nenable_neural_style=true\r\n") + "\r\n"

    # GIMP: folder named like the script, script executable, shared/ inside.
    gimp_plugin = os.path.join(user.gimp_plugins, "neural_style")
    script = os.path.join(gimp_plugin, "neural_style.py")
    assert os.stat(script).st_mode & stat.S_IXUSR
    assert files_under(os.path.join(gimp_plugin, "shared")) == files_under(os.path.join(user.checkout, "shared"))
    for plugin in (krita_plugin, gimp_plugin):
        with open(os.path.join(plugin, "install_info.json")) as f:
            assert json.load(f)["version"] == VERSION
        assert not any("__pycache__" in p for p in files_under(plugin))

    # Weights: an exact copy, loudly unverified.
    with open(user.weights, "rb") as installed, open(fake_weights, "rb") as original:
        assert installed.read() == original.read()
    assert "WITHOUT checking" in done.output

    # engine.json: the plugins' client runs this to start the engine.
    with open(user.engine_json) as f:
        config = json.load(f)
    assert config["command"] == [sys.executable, "-m", "engine_server"]
    assert config["weights"] == user.weights and config["version"] == VERSION
    assert stat.S_IMODE(os.stat(os.path.dirname(user.engine_json)).st_mode) == 0o700

    # The systemd user unit: written, not enabled (--no-start).
    unit = read(user.unit)
    assert 'ExecStart="%s" -m engine_server run' % sys.executable in unit
    assert 'Environment="NEURAL_STYLE_WEIGHTS=%s"' % user.weights in unit
    assert "WantedBy=default.target" in unit
    assert not os.path.exists(os.path.join(os.path.dirname(user.unit), "default.target.wants"))
    assert "written, not enabled" in done.output

    # The summary names every part.
    summary = done.output.split("\nSummary\n", 1)[1]
    for where in (user.weights, krita_plugin, gimp_plugin, user.engine_json, user.unit):
        assert where in summary


def test_flatpak_and_snap_folders_are_found(user, fake_weights):
    flatpak_krita = os.path.join(user.home, ".var", "app", "org.kde.krita")
    flatpak_gimp = os.path.join(user.home, ".var", "app", "org.gimp.GIMP", "config", "GIMP", "3.0")
    snap_gimp = os.path.join(user.home, "snap", "gimp", "current", ".config", "GIMP", "3.0")
    for folder in (flatpak_krita, flatpak_gimp, snap_gimp):
        os.makedirs(folder)
    user.install(fake_weights, "--no-service", "--no-editor-deps")
    assert os.path.isfile(os.path.join(flatpak_krita, "data", "krita", "pykrita", "neural_style.desktop"))
    assert "enable_neural_style=true" in read(os.path.join(flatpak_krita, "config", "kritarc"))
    for gimp in (flatpak_gimp, snap_gimp):
        assert os.access(os.path.join(gimp, "plug-ins", "neural_style", "neural_style.py"), os.X_OK)
    assert not os.path.exists(user.unit)                      # --no-service


def test_dir_overrides_replace_detection(user, fake_weights, tmp_path):
    user.fake_editors()
    krita, gimp = str(tmp_path / "my-pykrita"), str(tmp_path / "my-plug-ins")
    user.install(fake_weights, "--krita-dir", krita, "--gimp-dir", gimp, "--no-service")
    assert os.path.isfile(os.path.join(krita, "neural_style.desktop"))
    assert os.path.isfile(os.path.join(gimp, "neural_style", "neural_style.py"))
    assert not os.path.exists(user.pykrita) and not os.path.exists(user.gimp_plugins)


def test_rerun_is_idempotent_and_upgrades_in_place(user, fake_weights):
    user.fake_editors()
    write(user.kritarc, KRITARC)
    user.install(fake_weights)
    first = snapshot(user.home)
    manifest_path = os.path.join(user.config, "neural-style", "install-manifest.json")
    with open(manifest_path) as f:
        first_items = json.load(f)["items"]

    stale = os.path.join(user.gimp_plugins, "neural_style", "removed_in_this_version.py")
    write(stale, "")
    user.install(fake_weights)
    second = snapshot(user.home)
    changing = ("install_info.json", "installer.log", "install-manifest.json")
    assert {p: v for p, v in first.items() if not p.endswith(changing)} == \
           {p: v for p, v in second.items() if not p.endswith(changing)}
    assert not os.path.exists(stale)
    assert read(user.kritarc).count("enable_neural_style") == 1
    with open(manifest_path) as f:
        assert json.load(f)["items"] == first_items


def rows_of(check_output):
    """{part: (status, line)} of --check's table."""
    rows = {}
    for line in check_output.splitlines():
        for status in ("ok", "WARN", "FAIL"):
            marker = "  %s  " % status
            if marker in line:
                rows[line.split(marker)[0].strip()] = (status, line)
                break
    return rows


def test_check_says_all_is_well_after_an_install(user, fake_weights):
    user.fake_editors()
    user.install(fake_weights)
    healthy = user.run("--check")
    assert healthy.returncode == 0, healthy.output
    rows = rows_of(healthy.output)
    assert rows["VGG-19 weights"][0] == "WARN" and "UNVERIFIED" in rows["VGG-19 weights"][1]
    assert rows["Krita (native)"][0] == rows["GIMP 3 (native)"][0] == rows["engine Python"][0] == "ok"
    assert "all is well" in healthy.output


def test_check_catches_corrupt_weights_and_a_missing_plugin(user, fake_weights):
    user.fake_editors()
    user.install(fake_weights)
    with open(user.weights, "r+b") as f:   # damage the file in the middle
        f.seek(os.path.getsize(user.weights) // 2)
        f.write(b"\0garbage\0" * 64)
    os.remove(os.path.join(user.gimp_plugins, "neural_style", "neural_style.py"))
    krita_info = os.path.join(user.pykrita, "neural_style", "install_info.json")
    with open(krita_info) as f:
        info = json.load(f)
    info["version"] = "0.0.1"                    # an older install
    with open(krita_info, "w") as f:
        json.dump(info, f)
    broken = user.run("--check")
    assert broken.returncode == 1, broken.output
    rows = rows_of(broken.output)
    assert rows["VGG-19 weights"][0] == "FAIL" and "damaged" in rows["VGG-19 weights"][1]
    assert rows["GIMP 3 (native)"][0] == "FAIL" and "plugin missing" in rows["GIMP 3 (native)"][1]
    assert rows["Krita (native)"][0] == "FAIL" and "plugin 0.0.1 installed" in rows["Krita (native)"][1]
    assert "upgrades in place" in broken.output
    for part in ("enabled in kritarc", "engine.json", "engine Python", "TensorFlow device"):
        assert rows[part][0] == "ok", broken.output
    assert "-> run: python3 installer.py" in broken.output


def test_uninstall_removes_everything_it_installed_and_nothing_else(user, fake_weights):
    user.fake_editors()
    write(user.kritarc, KRITARC)
    other_plugin = os.path.join(user.pykrita, "other_plugin.desktop")
    write(other_plugin, "[Desktop Entry]\n")
    before = snapshot(user.root)

    user.install(fake_weights)
    mine = os.path.join(user.data, "neural-style", "styles", "my_style.tfrecord")
    write(mine, "the user's own style library")   # made after installing, inside a folder the installer made
    done = user.run("--uninstall")
    assert done.returncode == 0, done.output

    after = snapshot(user.root)
    created = {p for p in after if p not in before}
    assert created == {os.path.relpath(p, user.root) for p in (
        mine, os.path.dirname(mine), os.path.join(user.data, "neural-style"))}, sorted(created)
    assert {p: v for p, v in after.items() if p in before} == before
    assert "kept" in done.output

    again = user.run("--uninstall")
    assert again.returncode == 0 and "Nothing to uninstall" in again.output


def test_uninstall_removes_the_kritarc_it_created(user, fake_weights):
    user.fake_editors()
    before = snapshot(user.root)
    user.install(fake_weights, "--no-service")
    assert read(user.kritarc) == "[python]\nenable_neural_style=true\n"
    assert user.run("--uninstall").returncode == 0
    assert snapshot(user.root) == before


def test_weights_that_fail_verification_are_refused(user, fake_weights):
    user.fake_editors()
    done = user.run("--reuse-env", "--weights", fake_weights, "--no-service")
    assert done.returncode == 1
    assert "Traceback" not in done.output
    assert "253f8cb515780f3b799900260a226db6" in done.output and "--no-verify" in done.output
    assert not os.path.exists(user.weights)


def test_a_python_too_old_for_tensorflow_is_refused_before_anything_is_built(user, tmp_path, fake_weights):
    old_python = tmp_path / "python3.9"
    old_python.write_text("#!/bin/sh\necho 3.9\n")
    old_python.chmod(0o755)
    user.fake_editors()
    done = user.run("--python", str(old_python), "--weights", fake_weights, "--no-verify", "--no-service")
    assert done.returncode == 1 and "Traceback" not in done.output
    assert "is Python 3.9, but TensorFlow" in done.output and "--python PATH" in done.output
    assert not os.path.exists(os.path.join(user.data, "neural-style", "venv"))


def test_user_errors_are_one_clear_message(user, tmp_path):
    missing = user.run("--reuse-env", "--weights", str(tmp_path / "nope.h5"), "--no-verify")
    assert missing.returncode == 1 and "no such file" in missing.output and "Traceback" not in missing.output
    usage = user.run("--no-verify")
    assert usage.returncode == 2 and "--no-verify only applies to --weights FILE" in usage.output


def other_python(version):
    """An interpreter of that version installed on this machine, or None."""
    import glob
    import subprocess
    candidates = glob.glob(os.path.expanduser("~/.pyenv/versions/%s.*/bin/python%s" % (version, version)))
    candidates += [p for p in ("/usr/bin/python%s" % version, "/usr/local/bin/python%s" % version) if os.path.exists(p)]
    for candidate in candidates:
        if subprocess.run([candidate, "-c", "pass"], timeout=30).returncode == 0:
            return candidate
    return None


def test_the_installer_itself_runs_on_python_3_9(user, fake_weights):
    python39 = other_python("3.9")
    if python39 is None:
        skip_or_fail("no Python 3.9 on this machine (the machine image brings it; .ci/install_test_tools.sh checks)")
    user.fake_editors()
    before = snapshot(user.root)
    refused = user.run("--weights", fake_weights, "--no-verify", python=python39)   # a venv of 3.9: no
    assert refused.returncode == 1 and "is Python 3.9, but TensorFlow" in refused.output, refused.output
    user.install(fake_weights)                       # the engine side needs 3.11+: installed with this Python
    again = user.run("--reuse-env", "--weights", fake_weights, "--no-verify", "--no-start", "--no-editor-deps",
                     python=python39)
    assert "cannot import tensorflow" in again.output and "Traceback" not in again.output, again.output
    removed = user.run("--uninstall", python=python39)
    assert removed.returncode == 0, removed.output
    assert snapshot(user.root) == before


def test_older_pythons_get_a_sentence_not_a_syntax_error(user):
    python38 = other_python("3.8")
    if python38 is None:
        skip_or_fail("no Python 3.8 on this machine (the machine image brings it; .ci/install_test_tools.sh checks)")
    done = user.run("--help", python=python38)
    assert done.returncode == 2 and "needs Python 3.9 or newer" in done.output, done.output
