"""A plugin newer than the engine still running (docs/protocol.md, "Options an engine does not know"):
the engine's welcome lists its options; the client leaves out options the engine does not know when
they hold their default, and refuses a non-default one itself, saying the engine must be restarted.

Against a REAL engine from before `temporal_weight` (main's commit 719ec9f, extracted with
`git archive` into a temporary folder), which sends no list: the client learns from its refusal."""

import io
import os
import shutil
import subprocess
import tarfile

import msgpack
import pytest

from shared import options as job_options
from shared import protocol as p
from shared.client import Client, EngineOutdated, JobFailed
from shared.explain import explain
from tests.support.engine_fixture import REPO, running_engine, short_temp_dir
from tests.support.skips import skip_or_fail

OLD_ENGINE_COMMIT = "719ec9fb19400a2163044edd95376c4843e48be5"   # the last commit before temporal_weight
SIDE = 64
TIMEOUT_S = 300.0


def old_sources(folder):
    """The engine's sources at OLD_ENGINE_COMMIT, extracted into `folder` (skips where there is no history).
    safe.directory: CI runs as root on a clone another user may own, which git refuses by default."""
    try:
        archive = subprocess.run(["git", "-c", "safe.directory=*", "-C", REPO, "archive", OLD_ENGINE_COMMIT, "engine_server", "shared"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        skip_or_fail("git could not extract the old engine: %s" % error)
    if archive.returncode != 0:
        skip_or_fail("commit %s is not in this checkout (a shallow clone?): %s"
                     % (OLD_ENGINE_COMMIT, archive.stderr.decode(errors="replace").strip()))
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder)
    return folder


@pytest.fixture(scope="module")
def old_engine(fake_weights):
    home = short_temp_dir()
    try:
        sources = old_sources(os.path.join(home, "src"))
        with open(os.path.join(sources, "shared", "options.py"), encoding="utf-8") as table:
            assert "temporal_weight" not in table.read()
        endpoint = "ipc://" + os.path.join(home, "engine.sock")
        with running_engine(endpoint, fake_weights, home=home, repo=sources,
                            extra_args=("--client-timeout", "4")) as engine:
            yield engine
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def current_engine(fake_weights):
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    try:
        with running_engine(endpoint, fake_weights, home=home, extra_args=("--client-timeout", "4")) as engine:
            yield engine
    finally:
        shutil.rmtree(home, ignore_errors=True)


def every_option(**changes):
    """What the plugins send: every option of the table (and the daemon's two), a tiny job."""
    values = job_options.defaults()
    values.update({option.name: option.default for option in p.EXTRA_OPTIONS})
    values.update(iterations=2, max_size=SIDE, preview_interval_s=0.0)
    values.update(changes)
    return values


def tiny_job():
    image = p.Pixels(SIDE, SIDE, 3, "u8", bytes((i * 7) % 251 for i in range(SIDE * SIDE * 3)))
    style = p.Pixels(SIDE, SIDE, 3, "u8", bytes((i * 13) % 241 for i in range(SIDE * SIDE * 3)))
    return image, [p.StyleRef.pixels(style, "stripes")]


def counting(client):
    """Record the options map of every submit the client sends."""
    sent = []
    send = client._send_request

    def wrapper(frames, job=None):
        header = msgpack.unpackb(bytes(frames[0]), raw=False)
        if header.get("type") == p.SUBMIT:
            sent.append(dict(header["options"]))
        return send(frames, job)

    client._send_request = wrapper
    return sent


def run(client, options):
    image, styles = tiny_job()
    event = client.submit(image, styles, options).wait(TIMEOUT_S)
    assert event.type == "result", event.header
    assert (event.pixels.width, event.pixels.height) == (SIDE, SIDE)


def test_old_engine_runs_a_job_with_every_option_at_its_default(old_engine):
    with Client(old_engine.endpoint, autostart=False) as client:
        assert "options" not in client.welcome          # an engine from before the list
        sent = counting(client)
        run(client, every_option())
        # refused once (unknown option 'temporal_weight', at its default), sent again without it
        assert [("temporal_weight" in options) for options in sent] == [True, False]
        assert set(sent[0]) - set(sent[1]) == {"temporal_weight"}
        run(client, every_option())                      # remembered for this connection
        assert len(sent) == 3 and "temporal_weight" not in sent[2]
        assert client.status()["queued"] == 0


def test_old_engine_and_a_non_default_new_option_get_a_clear_error(old_engine):
    with Client(old_engine.endpoint, autostart=False) as client:
        image, styles = tiny_job()
        with pytest.raises(EngineOutdated) as raised:
            client.submit(image, styles, every_option(temporal_weight=50.0))
        text = str(raised.value)
        assert raised.value.option == "temporal_weight"
        assert "'temporal_weight'" in text and "older than this plugin" in text and "restart" in text, text
        summary = explain(error=raised.value).summary
        assert summary.startswith("The style engine running now is older than this plugin"), summary
        assert "temporal weight" in summary and "restart" in summary.lower(), summary
        # known now: refused again on the client side, and a job at the defaults still runs
        sent = counting(client)
        with pytest.raises(EngineOutdated):
            client.submit(image, styles, every_option(temporal_weight=0.0))
        assert sent == []
        run(client, every_option())
        # frame k > 0 of an animation: this engine would find previous_frame's data frames unreferenced
        assert "frames" not in client.welcome["capabilities"]
        del sent[:]
        with pytest.raises(EngineOutdated) as raised:
            client.submit(image, styles, every_option(), previous_frame=(image, image))
        assert raised.value.option == "previous_frame" and "cannot stylize frames" in str(raised.value)
        assert explain(error=raised.value).summary == ("The style engine running now is older than this plugin and "
                                                       "cannot stylize frames of an animation: restart the engine "
                                                       "(see Details).")
        assert sent == []
        # an option no version knows is the engine's own refusal, as before
        with pytest.raises(JobFailed) as refused:
            client.submit(image, styles, every_option(bogus=1))
        assert (refused.value.code, refused.value.field) == ("invalid_field", "options.bogus")


def test_current_engine_lists_its_options_and_nothing_is_left_out(current_engine):
    with Client(current_engine.endpoint, autostart=False) as client:
        names = sorted([option.name for option in job_options.OPTIONS] + [option.name for option in p.EXTRA_OPTIONS])
        assert client.welcome["options"] == names
        sent = counting(client)
        options = every_option(temporal_weight=50.0, seed=3)
        run(client, options)
        assert len(sent) == 1 and set(sent[0]) == set(options)
        assert sent[0]["temporal_weight"] == 50.0


def test_batch_through_an_old_engine(old_engine, tmp_path, monkeypatch, capsys):
    """The CLI's remote path uses the same client: defaults run, --temporal-weight 50 gets the clear error."""
    from PIL import Image

    from tests.test_protocol_frames import batch_floats

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    image, styles = tiny_job()
    (tmp_path / "shot").mkdir()
    for k in (1, 2):
        Image.frombytes("RGB", (SIDE, SIDE), image.data).rotate(k).save(str(tmp_path / "shot" / ("f%d.png" % k)))
    Image.frombytes("RGB", (SIDE, SIDE), styles[0].image.data).save(str(tmp_path / "style.png"))
    common = ["batch", tmp_path / "style.png", tmp_path / "shot", "-o", tmp_path / "out", "--iterations", "2",
              "--size", str(SIDE), "--engine=" + old_engine.endpoint]
    code, written, _, err = batch_floats(common, monkeypatch, capsys)
    assert code == 0 and sorted(written) == ["f1.png", "f2.png"], err
    code, written, _, err = batch_floats(common + ["--frames", "--temporal-weight", "50"], monkeypatch, capsys)
    assert code == 2 and written == {}, err
    assert "older than this plugin" in err and "'temporal_weight'" in err and err.count("\n") == 1, err
    code, written, _, err = batch_floats(common + ["--frames"], monkeypatch, capsys)
    assert code == 2 and sorted(written) == ["f1.png"], err       # the first frame needs no previous one
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: the engine running on") and "frames of an animation" in last, err


class StandInEngine:
    """A Client whose engine is a function: it knows `known` options and lists them or not (no socket)."""

    def __init__(self, known, listed):
        self.known, self.listed, self.sent = set(known), listed, []
        self.client = Client("ipc:///nonexistent/engine.sock", autostart=False)
        self.reconnect()
        self.client.connect = lambda: self.client.welcome
        self.client._send_request = self.receive

    def reconnect(self):
        self.client.welcome = {"type": "welcome", "pid": 7}
        if self.listed:
            self.client.welcome["options"] = sorted(self.known)

    def receive(self, frames, job=None):
        options = msgpack.unpackb(bytes(frames[0]), raw=False)["options"]
        self.sent.append(options)
        for name in options:
            if name not in self.known:
                raise JobFailed("invalid_field", "unknown option %r (known: ...)" % name, "options." + name)
        return {"type": "accepted", "job": len(self.sent), "queue_position": 0}, []


@pytest.mark.parametrize("listed", [True, False])
def test_options_an_engine_lacks_are_left_out_at_their_default(listed):
    """Two options the engine lacks: with its list nothing it lacks is sent; without it, each is
    refused once, then left out for the connection; a new connection learns again."""
    names = set(p.ALL_OPTIONS_BY_NAME) - {"temporal_weight", "seed"}
    engine = StandInEngine(names, listed)
    image, styles = tiny_job()
    options = every_option(temporal_weight=100, seed=0, style_layers=list(job_options.defaults()["style_layers"]))
    engine.client.submit(image, styles, options)
    engine.client.submit(image, styles, options)
    assert all(set(sent) == set(options) - {"temporal_weight", "seed"} for sent in engine.sent[-2:])
    assert len(engine.sent) == (2 if listed else 4)
    with pytest.raises(EngineOutdated) as raised:
        engine.client.submit(image, styles, every_option(seed=3))
    assert raised.value.option == "seed" and "'seed', set to 3" in str(raised.value)
    assert len(engine.sent) == (2 if listed else 4)          # refused before anything was sent
    engine.reconnect()                                        # another engine: learned again
    engine.client.submit(image, styles, options)
    assert len(engine.sent) == (3 if listed else 7)


def test_an_option_the_engine_refuses_for_another_reason_is_not_left_out():
    engine = StandInEngine(p.ALL_OPTIONS_BY_NAME, listed=False)

    def refuse(frames, job=None):
        engine.sent.append(frames)
        raise JobFailed("invalid_field", "options.seed must be an integer, got 'x'", "options.seed")

    engine.client._send_request = refuse
    image, styles = tiny_job()
    with pytest.raises(JobFailed):
        engine.client.submit(image, styles, every_option())
    assert len(engine.sent) == 1
