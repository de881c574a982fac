"""The editors' own Pythons on every platform, through the code path the real install takes: the
Python version read from fake install trees (Windows pythonXY.dll, macOS Python.framework and
GIMP.app's lib/python3.X, an AppImage's usr/lib/python3.X, a Flatpak runtime's), then the real
pyzmq/msgpack wheels for that version and platform downloaded from the package index (once per test
session) and unpacked into the plugin's vendor/ folder."""

import os
import stat
import sys

import pytest

from installing import editor_deps, editors
from installing.editor_python import flatpak_python, python_of_install
from installing.editors import find_gimps, find_kritas
from installing.manifest import Manifest


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("editor-wheels-cache"))


def touch(path, data=b""):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "wb") as f:
        f.write(data)


def place(editor, wheel_cache, tmp_path, monkeypatch):
    """What install_plugin does for the editor's Python: editor_deps into a vendor/ folder."""
    monkeypatch.setattr(editor_deps.paths, "data_dir", lambda: wheel_cache)
    vendor = str(tmp_path / "plugin" / "vendor")
    done = editor_deps.editor_deps(editor, sys.executable, vendor,
                                   Manifest(str(tmp_path / "manifest.json")))
    return done, vendor


def binaries(vendor):
    return sorted(os.path.relpath(os.path.join(root, name), vendor) for root, _dirs, names in os.walk(vendor)
                  for name in names if name.endswith((".pyd", ".so", ".dylib")))


def test_windows_krita_and_gimp_get_win_amd64_wheels_for_their_python(tmp_path, monkeypatch, wheel_cache):
    appdata, local, program_files = tmp_path / "Roaming", tmp_path / "Local", tmp_path / "Program Files"
    touch(program_files / "Krita (x64)" / "bin" / "python3.dll")      # the stable-ABI stub: not a version
    touch(program_files / "Krita (x64)" / "bin" / "python310.dll")
    touch(program_files / "GIMP 3" / "bin" / "python312.dll")
    for name, value in (("APPDATA", appdata), ("LOCALAPPDATA", local), ("ProgramFiles", program_files)):
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("ProgramW6432", raising=False)
    monkeypatch.setattr(editors.platform, "system", lambda: "Windows")
    (krita,), (gimp,) = find_kritas(), find_gimps()
    assert (krita.python_version, krita.system, gimp.python_version) == ("3.10", "Windows", "3.12")
    done, vendor = place(krita, wheel_cache, tmp_path, monkeypatch)
    assert done == "placed for Python 3.10 (Windows)"
    found = binaries(vendor)
    assert any(p.startswith("zmq") and p.endswith("win_amd64.pyd") for p in found), found
    assert any(p.startswith("msgpack") and p.endswith("cp310-win_amd64.pyd") for p in found), found
    assert os.path.isfile(os.path.join(vendor, "zmq", "__init__.py"))


def test_macos_krita_framework_and_gimp_app_get_macos_wheels(tmp_path, monkeypatch, wheel_cache):
    monkeypatch.setenv("HOME", str(tmp_path))
    apps = tmp_path / "Applications"
    touch(apps / "krita.app" / "Contents" / "Frameworks" / "Python.framework" / "Versions" / "3.10" / "Python")
    touch(apps / "GIMP.app" / "Contents" / "Resources" / "lib" / "python3.11" / "os.py")
    monkeypatch.setattr(editors.platform, "system", lambda: "Darwin")
    (krita,), (gimp,) = find_kritas(), find_gimps()
    assert (krita.python_version, krita.system, gimp.python_version, gimp.system) == ("3.10", "Darwin", "3.11", "Darwin")
    done, vendor = place(gimp, wheel_cache, tmp_path, monkeypatch)
    assert done == "placed for Python 3.11 (Darwin)"
    found = binaries(vendor)
    assert any(p.startswith("msgpack") and "cpython-311-darwin" in p for p in found), found
    for path in found:   # Mach-O, not ELF: really the macOS build
        with open(os.path.join(vendor, path), "rb") as f:
            assert f.read(4) in (b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe"), path


def test_krita_appimage_python_is_read_from_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    appimage = tmp_path / "Applications" / "krita-5.2.9-x86_64.AppImage"
    # Stands in for the AppImage runtime: `--appimage-extract PATTERN` unpacks into ./squashfs-root
    touch(appimage, b'#!/bin/sh\n[ "$1" = --appimage-extract ] || exit 9\n'
                    b'mkdir -p squashfs-root/usr/lib/python3.10 squashfs-root/usr/lib/python3\n')
    os.chmod(str(appimage), 0o755)
    monkeypatch.setattr(editors.shutil, "which", lambda name: None)
    (krita,) = find_kritas()
    assert (krita.variant, krita.python_version, krita.system) == ("appimage", "3.10", "Linux")
    os.chmod(str(appimage), stat.S_IRUSR)
    version, _system, why = python_of_install(str(appimage))
    assert version is None and "not executable" in why


def test_an_extracted_tree_prefers_the_python_the_editor_links(tmp_path):
    touch(tmp_path / "usr" / "lib" / "python3.11" / "os.py")
    touch(tmp_path / "usr" / "lib" / "python3.13" / "os.py")
    touch(tmp_path / "usr" / "lib" / "x86_64-linux-gnu" / "libpython3.11.so.1.0")
    assert python_of_install(str(tmp_path))[:2] == ("3.11", "Linux")
    assert python_of_install(str(tmp_path / "nowhere"))[0] is None


def test_flatpak_python_comes_from_the_runtime_named_in_the_metadata(tmp_path):
    base = tmp_path / "flatpak"
    touch(base / "app" / "org.kde.krita" / "current" / "active" / "metadata",
          b"[Application]\nname=org.kde.krita\nruntime=org.kde.Platform/x86_64/5.15-23.08\n")
    touch(base / "runtime" / "org.kde.Platform" / "x86_64" / "5.15-23.08" / "active" / "files" / "lib"
          / "python3.11" / "os.py")
    version, how = flatpak_python("org.kde.krita", [str(base)])
    assert version == "3.11" and "org.kde.Platform/x86_64/5.15-23.08" in how
