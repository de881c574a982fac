"""installer.py's pieces (the installing/ modules) in-process: the kritarc edit, its undo and its
reader, the TensorFlow choice, the weights download (resume, retry, verify, offline) against a local
HTTP server, editor folders per platform, and the pins against pyproject.toml."""

import hashlib
import http.server
import importlib.util
import os
import plistlib
import re
import threading

import pytest

from installing import editors, engine_env
from installing.editor_deps import wheel_platforms
from installing.editors import find_gimps, find_kritas
from installing.engine_env import choose_tensorflow, nvidia_driver
from installing.kritarc import plugin_enabled, set_kritarc, unset_kritarc
from installing.manifest import Manifest
from installing.output import InstallError
from installing.project import (EDITOR_DEPS, HERE, LAUNCHD_LABEL, PINNED, TENSORFLOW_VERSION, WEIGHTS_MD5,
                                WEIGHTS_URL)
from installing.service import launchd_plist, systemd_unit, windows_task
from installing.weights import download
from tests.support.skips import skip_or_fail


# ---- kritarc ----------------------------------------------------------------------------------

KRITARC_CASES = {
    "no python section": ("[General]\nfoo=1\n", "[General]\nfoo=1\n\n[python]\nenable_neural_style=true\n"),
    "no final newline": ("[General]\nfoo=1", "[General]\nfoo=1\n\n[python]\nenable_neural_style=true\n"),
    "python section in the middle": (
        "[General]\na=1\n\n[python]\nenable_x=false\n\n[Z]\nb=2\n",
        "[General]\na=1\n\n[python]\nenable_x=false\nenable_neural_style=true\n\n[Z]\nb=2\n"),
    "switched off before": ("[python]\nenable_neural_style=false\nenable_y=true\n",
                            "[python]\nenable_neural_style=true\nenable_y=true\n"),
    "CRLF": ("[python]\r\nenable_x=true\r\n[Z]\r\nq=1\r\n",
             "[python]\r\nenable_x=true\r\nenable_neural_style=true\r\n[Z]\r\nq=1\r\n"),
    "empty file": ("", "[python]\nenable_neural_style=true\n"),
}


@pytest.mark.parametrize("case", sorted(KRITARC_CASES))
def test_kritarc_edit_keeps_other_lines_and_uninstall_restores_the_file(tmp_path, case):
    before, expected = KRITARC_CASES[case]
    path = str(tmp_path / "kritarc")
    with open(path, "w", newline="") as f:
        f.write(before)
    manifest = Manifest(str(tmp_path / "manifest.json"))
    set_kritarc(path, manifest)
    set_kritarc(path, manifest)                    # twice: same result
    with open(path, newline="") as f:
        assert f.read() == expected
    assert plugin_enabled(path)                    # what --check reads
    unset_kritarc(manifest.find("kritarc", path))
    with open(path, newline="") as f:
        assert f.read() == before
    assert not plugin_enabled(path)


def test_kritarc_uninstall_keeps_what_krita_added_meanwhile(tmp_path):
    path = str(tmp_path / "kritarc")
    manifest = Manifest(str(tmp_path / "manifest.json"))
    set_kritarc(path, manifest)
    with open(path, "a") as f:
        f.write("enable_other=true\n\n[General]\nx=1\n")   # Krita rewrote the file meanwhile
    unset_kritarc(manifest.find("kritarc", path))
    with open(path) as f:
        assert f.read() == "[python]\nenable_other=true\n\n[General]\nx=1\n"


def test_kritarc_reader_looks_only_at_the_python_section(tmp_path):
    path = str(tmp_path / "kritarc")
    assert not plugin_enabled(path)                                  # no kritarc at all
    for text, enabled in (("[python]\r\nenable_neural_style = true\r\n", True),
                          ("[General]\nenable_neural_style=true\n[python]\nenable_x=true\n", False),
                          ("[python]\nenable_neural_style=false\n", False)):
        with open(path, "w", newline="") as f:
            f.write(text)
        assert plugin_enabled(path) is enabled, text


# ---- TensorFlow build ---------------------------------------------------------------------------

def test_gpu_build_only_with_an_nvidia_driver_on_linux(tmp_path):
    proc = tmp_path / "version"
    proc.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14\n")
    driver = nvidia_driver(str(proc))
    assert "550.54.14" in driver
    requirement, reason = choose_tensorflow("auto", "Linux", lambda: driver, "x86_64")
    assert requirement == "tensorflow[and-cuda]==%s" % TENSORFLOW_VERSION and "550.54.14" in reason
    requirement, reason = choose_tensorflow("auto", "Linux", lambda: None, "x86_64")
    assert requirement.startswith("tensorflow-cpu==") and "no NVIDIA driver" in reason
    assert choose_tensorflow("cpu", "Linux", lambda: driver, "x86_64")[0].startswith("tensorflow-cpu==")
    # PyPI has no tensorflow-cpu for ARM Linux (checked for 2.21.0)
    assert choose_tensorflow("auto", "Linux", lambda: None, "aarch64")[0].startswith("tensorflow==")
    assert choose_tensorflow("auto", "Darwin", lambda: driver)[0].startswith("tensorflow==")
    assert choose_tensorflow("auto", "Windows", lambda: driver)[0].startswith("tensorflow-cpu==")
    with pytest.raises(InstallError, match="WSL2"):
        choose_tensorflow("gpu", "Windows")


def test_no_driver_without_proc_file_or_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_env.shutil, "which", lambda name: None)
    assert nvidia_driver(str(tmp_path / "absent")) is None


def test_pins_cover_every_dependency_of_pyproject():
    with open(os.path.join(HERE, "pyproject.toml")) as f:
        block = re.search(r"^dependencies = \[(.*?)^\]", f.read(), re.MULTILINE | re.DOTALL).group(1)
    needed = {re.match(r'\s*"([A-Za-z0-9_.-]+)', line).group(1).lower()
              for line in block.splitlines() if line.strip().startswith('"')}
    pinned = {p.split("==")[0].lower() for p in PINNED} | {"tensorflow", "tensorflow-cpu"}
    assert needed <= pinned, needed - pinned
    assert all(re.match(r"^[a-z0-9-]+==\d+(\.\d+)+$", p) for p in PINNED + EDITOR_DEPS)


# ---- weights download ---------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 4096          # 1 MiB


class FlakyServer:
    """Serves PAYLOAD with Range support; the first `cuts` responses stop halfway."""

    def __init__(self, cuts=0, payload=PAYLOAD):
        self.cuts, self.payload, self.ranges = cuts, payload, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                start = 0
                header = self.headers.get("Range")
                server.ranges.append(header)
                if header:
                    start = int(re.match(r"bytes=(\d+)-", header).group(1))
                    if start >= len(server.payload):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(server.payload) - 1,
                                                                          len(server.payload)))
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cuts > 0:
                    server.cuts -= 1
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/vgg19.h5" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_download_resumes_a_cut_connection_with_a_range_request(tmp_path):
    target = str(tmp_path / "w.h5")
    with FlakyServer(cuts=1) as server:
        download(server.url, target, MD5, attempts=3, backoff=0)
    with open(target, "rb") as f:
        assert f.read() == PAYLOAD
    assert server.ranges == [None, "bytes=%d-" % (len(PAYLOAD) // 2)]
    assert not os.path.exists(target + ".part")


def test_download_continues_a_part_file_left_by_an_earlier_run(tmp_path):
    target = str(tmp_path / "w.h5")
    with open(target + ".part", "wb") as f:
        f.write(PAYLOAD[:1000])
    with FlakyServer() as server:
        download(server.url, target, MD5, attempts=1, backoff=0)
    assert server.ranges == ["bytes=1000-"]
    with open(target, "rb") as f:
        assert f.read() == PAYLOAD


def test_download_with_a_wrong_checksum_retries_then_gives_manual_steps(tmp_path):
    target = str(tmp_path / "w.h5")
    with FlakyServer() as server:
        with pytest.raises(InstallError) as error:
            download(server.url, target, "0" * 32, attempts=2, backoff=0)
    assert len(server.ranges) == 2                      # retried from scratch
    message = str(error.value)
    assert "md5" in message and server.url in message and "--weights" in message
    assert not os.path.exists(target) and not os.path.exists(target + ".part")


def test_offline_download_says_what_to_do_by_hand(tmp_path):
    with FlakyServer() as server:
        url = server.url                                # a port nobody listens on afterwards
    with pytest.raises(InstallError) as error:
        download(url, str(tmp_path / "w.h5"), MD5, attempts=2, backoff=0, timeout=5)
    message = str(error.value)
    assert "could not download" in message and "by hand" in message and "py --weights" in message


def test_weights_url_and_hash_are_keras_own():
    spec = importlib.util.find_spec("keras")      # located, not imported (that would load TensorFlow)
    candidate = os.path.join(os.path.dirname(spec.origin), "src", "applications", "vgg19.py") if spec else ""
    if not os.path.exists(candidate):
        skip_or_fail("Keras' vgg19.py is not installed here (installer.py --dev installs Keras)")
    with open(candidate) as f:
        keras_source = f.read()
    url = "".join(re.findall(r'"([^"]*)"', keras_source.split("WEIGHTS_PATH_NO_TOP = (", 1)[1].split(")", 1)[0]))
    assert url == WEIGHTS_URL
    assert 'file_hash="%s"' % WEIGHTS_MD5 in keras_source


# ---- editor folders per platform ------------------------------------------------------------------

def test_editor_folders_on_macos(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(editors.platform, "system", lambda: "Darwin")
    support = tmp_path / "Library" / "Application Support"
    (support / "krita").mkdir(parents=True)
    (support / "GIMP" / "3.0").mkdir(parents=True)
    (krita,), (gimp,) = find_kritas(), find_gimps()
    assert krita.folder == str(support / "krita" / "pykrita")
    assert krita.kritarc == str(tmp_path / "Library" / "Preferences" / "kritarc")
    assert gimp.folder == str(support / "GIMP" / "3.0" / "plug-ins")
    # the plugins put their own vendor/ folder first on sys.path
    assert gimp.vendor_dir() == str(support / "GIMP" / "3.0" / "plug-ins" / "neural_style" / "vendor")
    assert krita.vendor_dir() == str(support / "krita" / "pykrita" / "neural_style" / "vendor")


def test_editor_folders_on_windows(tmp_path, monkeypatch):
    appdata, local = tmp_path / "Roaming", tmp_path / "Local"
    program_files = tmp_path / "Program Files"
    (appdata / "krita").mkdir(parents=True)
    (program_files / "GIMP 3" / "bin").mkdir(parents=True)
    (program_files / "GIMP 3" / "bin" / "python312.dll").write_bytes(b"")
    for name, value in (("APPDATA", appdata), ("LOCALAPPDATA", local), ("ProgramFiles", program_files)):
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("ProgramW6432", raising=False)
    monkeypatch.setattr(editors.platform, "system", lambda: "Windows")
    (krita,), (gimp,) = find_kritas(), find_gimps()
    assert krita.folder == os.path.join(str(appdata), "krita", "pykrita")
    assert krita.kritarc == os.path.join(str(local), "kritarc")
    assert gimp.folder == os.path.join(str(appdata), "GIMP", "3.0", "plug-ins")
    assert gimp.python_version == "3.12"


def test_wheel_platform_tags():
    assert wheel_platforms("Windows", "AMD64") == ["win_amd64"]
    assert wheel_platforms("Linux", "arm64", "2.19") == [
        "manylinux_2_19_aarch64", "manylinux_2_18_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert wheel_platforms("Darwin", "arm64", "14.2") == ["macosx_14_0_arm64"]
    assert wheel_platforms("Darwin", "x86_64", "10.15.7") == ["macosx_10_15_x86_64"]
    assert wheel_platforms()[0].startswith("manylinux_2_")     # this machine


# ---- services ---------------------------------------------------------------------------------------

def test_launchd_agent_is_a_valid_plist_running_the_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    python, weights = "/Users/a b/venv/bin/python", "/Users/a b/w & x.h5"
    agent = plistlib.loads(launchd_plist(python, weights).encode("utf-8"))
    assert agent["Label"] == LAUNCHD_LABEL
    assert agent["ProgramArguments"] == [python, "-m", "engine_server", "run"]
    assert agent["EnvironmentVariables"] == {"NEURAL_STYLE_WEIGHTS": weights}
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}


def test_systemd_unit_quotes_paths_with_spaces_and_percent(tmp_path):
    unit = systemd_unit("/home/a b/100%/venv/bin/python", "/w.h5")
    assert 'ExecStart="/home/a b/100%%/venv/bin/python" -m engine_server run' in unit


def test_windows_logon_task_runs_the_engine_windowless(tmp_path):
    scripts = tmp_path / "venv" / "Scripts"
    scripts.mkdir(parents=True)
    python = str(scripts / "python.exe")
    assert windows_task(python)[-1] == '"%s" -m engine_server run' % python
    (scripts / "pythonw.exe").write_bytes(b"")
    command = windows_task(python)
    assert command[:2] == ["schtasks", "/Create"] and "ONLOGON" in command
    assert command[-1] == '"%s" -m engine_server run' % (scripts / "pythonw.exe")


def test_the_engine_location_is_told_truthfully():
    assert "runs from this checkout" in engine_env.engine_location(os.path.join(HERE, "engine_server"))
    installed = "/home/a/.local/share/neural-style/venv/lib/python3.11/site-packages/engine_server"
    assert engine_env.engine_location(installed) == (
        "the engine runs from its installed copy %s (re-run the installer to take up changes to the checkout)"
        % installed)
