"""Who may connect, and what the engine does with what it receives.

- The default ipc endpoint: the socket is 0600 in a 0700 folder, and another local uid (`nobody`)
  can neither say hello through `shared.client` nor get any answer on a raw socket. A control run
  with the permissions opened up shows that the same uid *would* get in, so the test can fail.
- Paths and ids a client sends never make the engine touch files outside the folders named.
- Nothing received is unpickled or evaluated: pickles in every place bytes can go stay inert, and
  the engine, shared and plugin code never imports pickle-like loaders.
"""

import os
import pickle
import re
import shutil
import stat
import subprocess
import sys

import msgpack
import pytest
import zmq

from shared.client import Client, ClientError, JobFailed
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import REPO, engine_env, running_engine, short_temp_dir
from tests.support.skips import skip_or_fail

OTHER_UID = 65534                  # nobody
OTHER_PYTHON = "/usr/bin/python3"  # Debian's, with python3-zmq: readable by any uid (pyenv's may not be)

AS_OTHER_USER = r"""
import sys, time
import msgpack, zmq
from shared.client import Client, ClientError
endpoint = sys.argv[1]
try:
    Client(endpoint, autostart=False, connect_timeout=2.0).connect()
    print("CLIENT: connected")
except ClientError as error:
    print("CLIENT: refused: %s" % error)
sock = zmq.Context.instance().socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(endpoint)
sock.send_multipart([msgpack.packb({"v": 1, "type": "hello", "req": 1})])
answer = sock.poll(3000)
print("RAW: answered" if answer else "RAW: no answer")
"""


def require_root():
    if os.geteuid() != 0:
        skip_or_fail("needs root to run a client as another uid (CI runs as root)")


@pytest.fixture(scope="module")
def default_engine(fake_weights):
    """An engine on the per-user DEFAULT endpoint of its environment. The folders above the engine's
    own socket folder are opened (0755), so only the engine's own permissions keep others out."""
    home = short_temp_dir()
    os.makedirs(os.path.join(home, "run"))
    os.chmod(home, 0o755)
    os.chmod(os.path.join(home, "run"), 0o755)
    env = engine_env(home)
    endpoint = subprocess.run(
        [sys.executable, "-c", "from shared.endpoints import default_endpoint; print(default_endpoint())"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    assert endpoint == "ipc://" + os.path.join(home, "run", "neural-style", "engine.sock"), endpoint
    try:
        with running_engine(endpoint, fake_weights, home=home, extra_args=("--client-timeout", "10")) as engine:
            yield engine
    finally:
        shutil.rmtree(home, ignore_errors=True)


def as_other_user(endpoint):
    def drop_privileges():
        os.setgroups([])
        os.setgid(OTHER_UID)
        os.setuid(OTHER_UID)

    result = subprocess.run([OTHER_PYTHON, "-c", AS_OTHER_USER, endpoint], cwd="/", capture_output=True, text=True,
                            timeout=60, preexec_fn=drop_privileges,
                            env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin", "HOME": "/nonexistent",
                                 "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_another_uid_cannot_connect_to_the_default_socket(default_engine):
    require_root()
    socket_path = default_engine.endpoint[len("ipc://"):]
    folder = os.path.dirname(socket_path)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600
    assert stat.S_ISSOCK(os.stat(socket_path).st_mode)
    assert os.stat(socket_path).st_uid == os.geteuid() == os.stat(folder).st_uid

    output = as_other_user(default_engine.endpoint)
    assert "CLIENT: refused" in output and "RAW: no answer" in output, output
    refusal = output.split("CLIENT: refused: ", 1)[1].splitlines()[0]
    assert "another user" in refusal and socket_path in refusal, refusal   # says why, in one sentence

    # Control: with the permissions opened, the same uid gets in; so the 0700/0600 is what stops it.
    os.chmod(folder, 0o755)
    os.chmod(socket_path, 0o666)
    try:
        output = as_other_user(default_engine.endpoint)
    finally:
        os.chmod(socket_path, 0o600)
        os.chmod(folder, 0o700)
    assert "CLIENT: connected" in output and "RAW: answered" in output, output

    with Client(default_engine.endpoint, autostart=False) as owner:      # the owner still gets in
        assert owner.connect()["pid"] == default_engine.process.pid


# ---------------------------------------------------------------------------------------------- paths

def tree(folder):
    """{relative path: (size, mtime_ns)} of every file under folder."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            info = os.lstat(path)
            found[os.path.relpath(path, folder)] = (info.st_size, info.st_mtime_ns)
    return found


def tiny(width=8, height=8, seed=1):
    import random
    return Pixels(width, height, 3, "u8", random.Random(seed).randbytes(width * height * 3))


def test_client_paths_and_ids_never_reach_outside_the_named_folders(default_engine, tmp_path):
    victim_folder = tmp_path / "victim"
    victim_folder.mkdir()
    victim = victim_folder / "0123456789abcdef.nss"      # what a traversing id would point at
    victim.write_bytes(b"precious")
    watched = [str(tmp_path), default_engine.home]
    with Client(default_engine.endpoint, autostart=False) as client:
        style = client.add_style(pixels=tiny(), name="real")
        before = {folder: tree(folder) for folder in watched}
        relative_victim = os.path.relpath(str(victim_folder / "0123456789abcdef"), "/")
        hostile_ids = ["../" * 12 + relative_victim, "/" + relative_victim, "..", "../", ".",
                       style["id"] + "/../" + style["id"], style["id"] + "\x00", "0123456789ABCDEF"]
        for hostile in hostile_ids:
            with pytest.raises(ClientError) as caught:
                client.remove_style(hostile)
            assert caught.value.code in ("style_not_found", "invalid_field"), (hostile, caught.value.code)
            with pytest.raises(ClientError):
                client.rename_style(hostile, "renamed")
            with pytest.raises(JobFailed) as caught:
                client.submit(tiny(), [StyleRef.library(hostile)], {"iterations": 1})
            assert caught.value.code in ("style_not_found", "invalid_field"), (hostile, caught.value.code)
        for hostile in ("relative/pack.tfrecord", "../pack.tfrecord", "~/pack.tfrecord",
                        str(tmp_path / "no" / "such" / "folder" / "pack.tfrecord")):
            with pytest.raises(ClientError):
                client.export_styles(hostile, [style["id"]])
        assert {folder: tree(folder) for folder in watched} == before
        assert victim.read_bytes() == b"precious"
        assert not (tmp_path / "no").exists()

        # A pack whose record carries a traversing id is refused as a whole: nothing written anywhere.
        pack = tmp_path / "hostile.tfrecord"
        from engine_server.library import records
        from tests.test_library_corruption import good_record
        records.write_path(str(pack), [records.encode(good_record(id="../" * 8 + relative_victim))])
        before = {folder: tree(folder) for folder in watched}
        with pytest.raises(ClientError) as caught:
            client.import_styles(str(pack))
        assert caught.value.code == "bad_pack", caught.value
        assert {folder: tree(folder) for folder in watched} == before

        # Export writes exactly the one file the user named, and nothing else anywhere.
        named = tmp_path / "out" / "mine.tfrecord"
        named.parent.mkdir()
        assert client.export_styles(str(named), [style["id"]]) == 1
        after = {folder: tree(folder) for folder in watched}
        added = {(folder, name) for folder in watched for name in set(after[folder]) - set(before[folder])}
        assert added == {(str(tmp_path), "out/mine.tfrecord")}, added
        assert victim.read_bytes() == b"precious"


# ---------------------------------------------------------------------------------------------- no unpickling

class Tripwire:
    """Unpickling this creates the marker file (so an unpickle anywhere would be seen)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_nothing_received_is_unpickled_or_evaluated(default_engine, tmp_path):
    marker = str(tmp_path / "UNPICKLED")
    payload = pickle.dumps(Tripwire(marker), protocol=2)
    evaluated = "__import__('os').system('touch %s')" % (tmp_path / "EVALUATED")
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(default_engine.endpoint)

    def ask(frames):
        sock.send_multipart(frames)
        while True:
            assert sock.poll(30000), "no answer"
            header = msgpack.unpackb(sock.recv_multipart()[0], raw=False)
            if header["type"] != "heartbeat":
                return header

    try:
        answers = [
            ask([payload]),                                                     # a pickle as the header
            ask([msgpack.packb({"v": 1, "type": "hello", "req": 1, "client": msgpack.ExtType(1, payload)})]),
            ask([msgpack.packb({"v": 1, "type": "style_add", "req": 2, "name": payload, "path": "/x.png"})]),
            ask([msgpack.packb({"v": 1, "type": evaluated, "req": 3})]),
            ask([msgpack.packb({"v": 1, "type": "submit", "req": 4, "image": evaluated, "styles": evaluated,
                                "options": {"iterations": evaluated}})]),
        ]
    finally:
        sock.close(linger=0)
    assert answers[0]["type"] == "error" and answers[0]["code"] == "bad_message"
    assert answers[1]["type"] == "welcome"                       # an unknown value is ignored, not decoded
    assert [a["code"] for a in answers[2:]] == ["invalid_field", "unknown_type", "invalid_field"], answers

    # Pickles where bytes are legitimate: pixel frames, a style file, a pack file.
    pickle_file = tmp_path / "style.png"
    pickle_file.write_bytes(payload)
    pack_file = tmp_path / "pack.tfrecord"
    pack_file.write_bytes(payload)
    width = 16
    pixels = Pixels(width, 8, 3, "u8", (payload * 20)[:width * 8 * 3])
    with Client(default_engine.endpoint, autostart=False) as client:
        added = client.add_style(pixels=pixels, name="pickle bytes are just pixels")
        client.remove_style(added["id"])
        with pytest.raises(ClientError) as caught:
            client.import_styles(str(pack_file))
        assert caught.value.code == "bad_pack"
        with pytest.raises(ClientError) as caught:     # refused on arrival: its header is not an image's
            client.submit(pixels, [StyleRef.file(str(pickle_file))], {"iterations": 1})
        assert (caught.value.code, caught.value.field) == ("bad_input", "styles[0].path"), caught.value
        assert "is not an image" in caught.value.message
    assert not os.path.exists(marker) and not (tmp_path / "EVALUATED").exists()


LOADERS = re.compile(r"\b(pickle|cPickle|dill|shelve|marshal|jsonpickle)\b|\beval\(|\bexec\(|allow_pickle\s*=\s*True"
                     r"|yaml\.(unsafe_)?load\(|\bload_model\(|\.from_config\(")


def test_no_code_that_could_unpickle_or_evaluate_received_data():
    """A static guard: the engine, shared code and plugins use none of the loaders that run code."""
    offenders = []
    for package in ("engine_server", "shared", "plugin_gimp", "plugin_krita"):
        for root, _, names in os.walk(os.path.join(REPO, package)):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    with open(path, encoding="utf-8") as f:
                        for number, line in enumerate(f, 1):
                            code = line.split("#", 1)[0]
                            if LOADERS.search(code):
                                offenders.append("%s:%d: %s" % (os.path.relpath(path, REPO), number, line.strip()))
    assert not offenders, offenders
