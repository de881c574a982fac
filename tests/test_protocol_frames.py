"""Frames through a real engine (issue 18 item 3, docs/protocol.md "submit.previous_frame"): a
FrameSequence gives what the in-process `batch --frames` gives, the temporal term holds the frames,
bad previous frames are refused naming the field, Cancel and errors keep the frames done; and
`batch --frames --engine=EP` gives the in-process run's results, progress per frame, Ctrl-C."""

import json
import os
import shutil
import signal
import subprocess
import sys

import msgpack
import numpy as np
import pytest
import zmq
from PIL import Image

from shared import protocol as p
from shared.client import Client, JobFailed
from shared.frames import FrameSequence
from shared.options import TEMPORAL_WEIGHT
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import REPO, running_engine, short_temp_dir
from tests.test_batch_cli import smooth

SIZE = (64, 64)          # height, width of a frame
SHIFT = 3                # the camera pans this many pixels per frame
TIMEOUT_S = 300.0


@pytest.fixture(scope="module")
def frames_engine(fake_weights):
    """One engine for the module, computing in float32 like the in-process runs it is compared with."""
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    try:
        with running_engine(endpoint, fake_weights, home=home,
                            extra_args=("--client-timeout", "4", "--precision", "float32")) as engine:
            yield engine
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def client(frames_engine):
    with Client(frames_engine.endpoint, autostart=False) as c:
        yield c


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """shot/f1..f3.png: a window panning over a texture; style.png. -> (folder, [HxWx3 float32 frames])."""
    folder = tmp_path_factory.mktemp("frames")
    (folder / "shot").mkdir()
    height, width = SIZE
    big = smooth(height, width + 3 * SHIFT, 0)
    frames = []
    for k in range(3):
        frame = big[:, k * SHIFT:k * SHIFT + width]
        Image.fromarray(frame).save(folder / "shot" / ("f%d.png" % (k + 1)))
        frames.append(frame.astype(np.float32))
    Image.fromarray(smooth(height, width, 3)).save(folder / "style.png")
    return folder, frames


def exact(rgb):
    """float32 0..255 -> f32 Pixels with scale 255: the engine takes and returns them bit for bit."""
    values = np.ascontiguousarray(rgb, "<f4")
    return Pixels(values.shape[1], values.shape[0], 3, "f32", values.tobytes(), scale=255.0)


def unpack(pixels):
    assert (pixels.dtype, pixels.scale) == ("f32", 255.0), pixels
    return np.frombuffer(pixels.data, "<f4").reshape(pixels.height, pixels.width, pixels.channels)[..., :3]


def run_sequence(client, frames, style, options, on_event=None):
    """Drive a FrameSequence to its end -> (sequence, {index: result array}, [FrameEvent])."""
    sequence = FrameSequence(client, len(frames), lambda k: exact(frames[k]), [StyleRef.file(style)],
                             dict(options, preview_interval_s=0.0))
    results, events = {}, []
    for _ in range(int(TIMEOUT_S / 0.1)):
        if sequence.done:
            break
        got = sequence.poll(0.1)
        if got is None:
            continue
        events.append(got)
        if got.event.type == "result":
            results[got.index] = unpack(got.event.pixels)
        if on_event is not None:
            on_event(sequence, got)
    assert sequence.done, "the sequence did not end within %g s" % TIMEOUT_S
    return sequence, results, events


def flicker(results):
    """Mean |difference| between consecutive results once the known pan is compensated (interior)."""
    return float(np.mean([np.mean(np.abs(b[4:-4, 4:-4 - SHIFT] - a[4:-4, 4 + SHIFT:-4]))
                          for a, b in zip(results, results[1:])]))


def test_a_sequence_through_the_engine_is_the_in_process_frames_run(client, shot, fake_weights, tmp_path,
                                                                     monkeypatch):
    from engine_server.cli import batch_run
    from engine_server.cli.main import main

    folder, frames = shot
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    written = {}
    monkeypatch.setattr(batch_run, "write_output",
                        lambda path, result, *rest: written.__setitem__(os.path.basename(path), np.array(result)))
    code = main(["batch", str(folder / "style.png"), str(folder / "shot"), "-o", str(tmp_path / "out"), "--frames",
                 "--weights", fake_weights, "--iterations", "8", "--precision", "float32"])
    assert code == 0 and sorted(written) == ["f1.png", "f2.png", "f3.png"]
    texts = []

    def show(sequence, got):
        if got.event.type == "progress":
            texts.append(sequence.progress_text(got.event.header))

    sequence, results, events = run_sequence(client, frames, str(folder / "style.png"), {"iterations": 8}, show)
    assert sequence.finished == 3 and sorted(results) == [0, 1, 2]
    assert [got.index for got in events if got.event.type == "result"] == [0, 1, 2]
    for k, name in enumerate(["f1.png", "f2.png", "f3.png"]):
        difference = float(np.max(np.abs(results[k] - written[name])))
        print("frame %d: max |engine - in-process| = %g" % (k + 1, difference))
        # The same code (core/temporal.py) on the same float32 values, sent and returned bit for bit (f32,
        # scale 255), on the same machine: the very same numbers (measured: 0 difference).
        assert difference == 0.0, (name, difference)
    print("\n".join(texts))
    assert [frame for frame in ("frame 1/3 \u2013 iteration", "frame 2/3", "frame 3/3") if
            not any(frame in text for text in texts)] == [], texts


def test_the_temporal_term_holds_the_frames(client, shot):
    folder, frames = shot
    style, options = str(folder / "style.png"), {"iterations": 20}
    alone = [run_sequence(client, [frame], style, options)[1][0] for frame in frames]
    held = run_sequence(client, frames, style, options)[1]
    loose = run_sequence(client, frames, style, dict(options, temporal_weight=0.0))[1]
    assert np.array_equal(held[0], loose[0])                    # the first frame has no previous one
    assert float(np.max(np.abs(held[2] - loose[2]))) > 1.0
    numbers = flicker(alone), flicker([loose[k] for k in range(3)]), flicker([held[k] for k in range(3)])
    print("flicker: independent %.3f, temporal weight 0 %.3f, %g %.3f" % (numbers[0], numbers[1], TEMPORAL_WEIGHT,
                                                                          numbers[2]))
    assert numbers[2] < numbers[1] and numbers[2] < 0.75 * numbers[0], numbers


def raw_submit(endpoint, frames):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send_multipart(frames)
        assert sock.poll(30000), "the engine did not answer"
        return msgpack.unpackb(sock.recv_multipart()[0], raw=False)
    finally:
        sock.close(linger=0)


def test_bad_previous_frames_are_refused_naming_the_field(client, frames_engine, shot):
    folder, frames = shot
    style = [StyleRef.file(str(folder / "style.png"))]
    frame = exact(frames[1])
    narrow = exact(frames[0][:, :60])
    u8 = Pixels(64, 64, 4, "u8", np.zeros((64, 64, 4), np.uint8).tobytes())
    cases = [
        ((narrow, u8), "previous_frame.content", "previous_frame.content: expected 64x64 like image, got 60x64"),
        ((u8, narrow), "previous_frame.result", "previous_frame.result: expected 64x64 like image, got 60x64"),
    ]
    for pair, field, message in cases:
        with pytest.raises(JobFailed) as caught:
            client.submit(frame, style, {"iterations": 2}, previous_frame=pair)
        assert (caught.value.code, caught.value.field, caught.value.message) == ("bad_input", field, message)
    with pytest.raises(JobFailed) as caught:
        client.submit(frame, style, {"iterations": 2, "temporal_weight": -1}, previous_frame=(u8, u8))
    assert (caught.value.code, caught.value.field) == ("invalid_field", "options.temporal_weight"), caught.value
    assert "between 0 and" in caught.value.message
    good = p.build_submit(frame, style, {"iterations": 2}, previous_frame=(u8, u8), req=1)
    header = msgpack.unpackb(good[0], raw=False)
    result_frame = header["previous_frame"]["result"]["frame"]
    without = dict(header, previous_frame={"content": header["previous_frame"]["content"]})
    answer = raw_submit(frames_engine.endpoint, [msgpack.packb(without)] + [
        frame for index, frame in enumerate(good[1:], 1) if index != result_frame])
    assert (answer["type"], answer["code"], answer["field"]) == ("error", "bad_input", "previous_frame.result"), answer
    answer = raw_submit(frames_engine.endpoint, [msgpack.packb(dict(header, previous_frame=[1, 2]))] + good[1:])
    assert (answer["code"], answer["field"]) == ("bad_input", "previous_frame"), answer
    # A previous frame of any layer format (u8 RGBA here) is taken, and the engine goes on serving.
    final = client.submit(frame, style, {"iterations": 2}, previous_frame=(u8, u8)).wait(TIMEOUT_S)
    assert final.type == "result", final.header
    assert frames_engine.process.poll() is None


class Counting:
    """A Client that records what each submit's previous_frame was."""

    def __init__(self, client):
        self.client, self.submits = client, []

    def submit(self, *args, **kwargs):
        self.submits.append(kwargs.get("previous_frame"))
        return self.client.submit(*args, **kwargs)


def test_cancel_after_the_first_frame_keeps_it_and_submits_nothing_more(client, shot):
    folder, frames = shot
    counting = Counting(client)

    def cancel_at_first_result(sequence, got):
        if got.event.type == "result":
            sequence.cancel()

    sequence, results, events = run_sequence(counting, frames, str(folder / "style.png"), {"iterations": 2},
                                             cancel_at_first_result)
    assert sequence.finished == 1 and sorted(results) == [0] and counting.submits == [None]
    assert sequence.poll(0.5) is None

    counting = Counting(client)

    def cancel_in_the_second_frame(sequence, got):
        if got.index == 1 and got.event.type == "progress":
            sequence.cancel()

    sequence, results, events = run_sequence(counting, frames, str(folder / "style.png"),
                                             {"iterations": 60, "optimizer": "adam"}, cancel_in_the_second_frame)
    assert sequence.finished == 1 and sorted(results) == [0] and len(counting.submits) == 2
    assert events[-1].index == 1 and events[-1].event.type == "cancelled"
    content, result = counting.submits[1]
    assert np.array_equal(unpack(result), results[0]) and content.data == exact(frames[0]).data
    assert client.status().get("queued") == 0


def test_an_error_on_frame_k_ends_the_sequence_with_the_earlier_frames_delivered(client, shot):
    folder, frames = shot
    broken = frames[:2] + [frames[2][:, :60]]            # the third frame has another size
    counting = Counting(client)
    sequence, results, events = run_sequence(counting, broken, str(folder / "style.png"), {"iterations": 2})
    assert sequence.finished == 2 and sorted(results) == [0, 1] and len(counting.submits) == 3
    last = events[-1]
    assert (last.index, last.count, last.event.type) == (2, 3, "error")
    assert (last.event.header["code"], last.event.header["field"]) == ("bad_input", "previous_frame.content")
    assert sequence.poll(0.2) is None


# ---------------------------------------------------------------------------------------------- batch --frames --engine

def batch_floats(argv, monkeypatch, capsys):
    """Run `batch` in this process (the engine client included) -> (exit code, {file: float result}, out, err)."""
    from engine_server.cli import batch_run
    from engine_server.cli.main import main

    written = {}
    monkeypatch.setattr(batch_run, "write_output",
                        lambda path, result, *rest: written.__setitem__(os.path.basename(path), np.array(result)))
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, written, captured.out, captured.err


def test_batch_frames_through_the_engine_is_the_in_process_run(frames_engine, shot, fake_weights, tmp_path,
                                                              monkeypatch, capsys):
    folder, _ = shot
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    common = ["batch", folder / "style.png", folder / "shot", "-o", tmp_path / "out", "--frames", "--iterations", "8",
              "--frame-iterations", "5", "--temporal-weight", "50", "--json"]
    code, here, _, err = batch_floats(common + ["--weights", fake_weights, "--precision", "float32"], monkeypatch,
                                      capsys)
    assert code == 0, err
    code, there, out, err = batch_floats(common + ["--engine=" + frames_engine.endpoint], monkeypatch, capsys)
    assert code == 0, err
    assert sorted(there) == sorted(here) == ["f1.png", "f2.png", "f3.png"]
    for name in here:
        # Bit for bit, as FrameSequence above: the engine runs the same code on the same float32 values.
        assert np.array_equal(there[name], here[name]), (name, float(np.max(np.abs(there[name] - here[name]))))
    events = [json.loads(line) for line in out.splitlines()]
    assert [event["written"] for event in events if "written" in event] == [
        str(tmp_path / "out" / name) for name in ("f1.png", "f2.png", "f3.png")]
    progress = {(event["name"], event["task"], event["tasks"], event["iterations"]) for event in events
                if "iteration" in event}
    assert progress == {("f1", 0, 3, 8), ("f2", 1, 3, 5), ("f3", 2, 3, 5)}, progress


def test_batch_frames_through_the_engine_bad_frame_and_ctrl_c(frames_engine, shot, tmp_path, monkeypatch, capsys):
    folder, frames = shot
    broken = tmp_path / "broken"
    broken.mkdir()
    for k, frame in enumerate(frames[:2] + [frames[2][:, :60]]):
        Image.fromarray(frame.astype(np.uint8)).save(broken / ("g%d.png" % (k + 1)))
    code, written, _, err = batch_floats(["batch", folder / "style.png", broken, "-o", tmp_path / "out", "--frames",
                                          "--iterations", "2", "--engine=" + frames_engine.endpoint], monkeypatch,
                                         capsys)
    assert code == 2 and sorted(written) == ["g1.png", "g2.png"]
    assert err.strip().splitlines()[-1].startswith("error: frame %s is 60x64, but the shot's frames are 64x64"
                                                  % (broken / "g3.png")), err

    out = tmp_path / "stopped"
    process = subprocess.Popen([sys.executable, "-m", "engine_server", "batch", str(folder / "style.png"),
                                str(folder / "shot"), "-o", str(out), "--frames", "--iterations", "3",
                                "--frame-iterations", "5000", "--optimizer", "adam", "--json",
                                "--engine=" + frames_engine.endpoint], cwd=REPO, env=frames_engine.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            line = process.stdout.readline()
            assert line, process.communicate(timeout=30)
            event = json.loads(line)
            if event["name"] == "f2" and "iteration" in event:      # its first progress brought a preview
                break
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr.startswith("interrupted at iteration ") and stderr.strip().endswith(
        "/5000; the image so far is in %s; 1 earlier output(s) are in %s" % (out / "f2.png", out)), stderr
    assert sorted(os.listdir(out)) == ["f1.png", "f2.png"]
    assert frames_engine.process.poll() is None
