"""`python -m engine_server styles ...` end to end on real library folders."""

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from engine_server.cli import main as cli
from engine_server.library import StyleLibrary
from tests.support.style_images import style_pixels

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def user_home(tmp_path, monkeypatch):
    """A throwaway user: the default library folder and the log file live under tmp_path."""
    env = {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ, **env)


def engine(env, *args):
    return subprocess.run([sys.executable, "-m", "engine_server", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def image_file(folder, name, seed):
    path = os.path.join(str(folder), name)
    Image.fromarray(style_pixels(seed)).save(path)
    return path


def test_add_and_list_in_a_real_process(tmp_path, user_home):
    path = image_file(tmp_path, "wave.png", 1)
    added = engine(user_home, "styles", "add", path, "--name", 'Hokusai "Wave" / 1831', "--credit", "public domain")
    assert added.returncode == 0, added.stderr
    listed = engine(user_home, "styles", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [style] = json.loads(listed.stdout)
    assert (style["name"], style["credit"], style["width"], style["height"]) == \
        ('Hokusai "Wave" / 1831', "public domain", 64, 48)
    assert style["id"] in added.stdout
    default_folder = os.path.join(str(tmp_path), "data", "neural-style", "styles")
    assert os.listdir(default_folder).count(style["id"] + ".tfrecord") == 1

    failed = engine(user_home, "styles", "rename", "00000000deadbeef", "x")
    assert failed.returncode != 0
    assert failed.stderr == "error: no style has the id 00000000deadbeef\n"     # one line, no TF chatter


def test_every_command_in_process(tmp_path, user_home, capsys):
    mine, theirs = str(tmp_path / "mine"), str(tmp_path / "theirs")
    pack = str(tmp_path / "share.tfrecord")

    def styles(*args):
        code = cli.main(["styles", *args])
        out, err = capsys.readouterr()
        return code, out, err

    assert styles("--library", mine, "list")[:2] == (0, "no styles in %s\n" % mine)
    ids = []
    for seed, name in ((1, "één/twee"), (2, "it's \"quoted\"")):
        code, out, _ = styles("--library", mine, "add", image_file(tmp_path, "s%d.png" % seed, seed), "--name", name)
        assert code == 0 and name in out
        ids.append(out.split()[0])
    code, out, _ = styles("--library", mine, "list")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ids

    assert styles("--library", mine, "rename", ids[0], "new ☃ name")[0] == 0
    assert StyleLibrary(mine).get(ids[0]).name == "new ☃ name"

    code, out, _ = styles("--library", mine, "export", pack, *ids)
    assert code == 0 and "wrote 2 styles" in out
    code, out, _ = styles("--library", theirs, "import", pack)
    assert code == 0 and "imported 2 styles" in out
    assert [info.name for info in StyleLibrary(theirs).list()] == ["new ☃ name", "it's \"quoted\""]

    assert styles("--library", mine, "remove", ids[1])[:2] == (0, "removed %s\n" % ids[1])
    assert [info.id for info in StyleLibrary(mine).list()] == [ids[0]]

    with open(StyleLibrary(mine).path_of(ids[0]), "r+b") as stream:   # damage: list warns, still exits 0
        stream.truncate(30)
    code, out, err = styles("--library", mine, "list", "--json")
    assert code == 0 and json.loads(out) == [] and "skipped" in err and ids[0] in err

    (tmp_path / "junk.tfrecord").write_bytes(b"not a pack")
    code, out, err = styles("--library", theirs, "import", str(tmp_path / "junk.tfrecord"))
    assert code != 0 and err.startswith("error: the style pack") and len(err.splitlines()) == 1
    assert len(StyleLibrary(theirs).list()) == 2

    code, out, err = styles("--library", mine, "add", str(tmp_path / "missing.png"))
    assert code != 0 and "missing.png" in err and len(err.splitlines()) == 1
