"""`python -m engine_server batch` and the command line's peers' features: outputs per input, style
targets once, --frames, bad inputs (one line naming the file, the rest done), progress lines
without a terminal, --save-every, Ctrl-C, lib:NAME, --engine=EP."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from engine_server.cli.main import main
from engine_server.core.video import VideoReader, VideoWriter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIFT = 3


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("NEURAL_STYLE_WEIGHTS", raising=False)


def smooth(height, width, seed):
    """A random texture with structure at two scales (optical flow needs some)."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (height // 6 + 2, width // 6 + 2, 3), dtype=np.uint8))
    fine = Image.fromarray(rng.integers(0, 256, (height // 2, width // 2, 3), dtype=np.uint8))
    mixed = 0.7 * np.asarray(coarse.resize((width, height), Image.BICUBIC), np.float32) + \
        0.3 * np.asarray(fine.resize((width, height), Image.BILINEAR), np.float32)
    return mixed.clip(0, 255).astype(np.uint8)


@pytest.fixture
def inputs(tmp_path):
    """a.png, b.jpg (48x40), a shot/ folder of 3 panning frames, clip.mp4 (3 frames), style.png."""
    folder = tmp_path / "in"
    (folder / "shot").mkdir(parents=True)
    big = smooth(40, 48 + 3 * SHIFT, 0)
    for k in range(3):
        Image.fromarray(big[:, k * SHIFT:k * SHIFT + 48]).save(folder / "shot" / ("f%d.png" % (k + 1)))
    Image.fromarray(smooth(40, 48, 1)).save(folder / "a.png")
    Image.fromarray(smooth(40, 48, 2)).save(folder / "b.jpg")
    Image.fromarray(smooth(48, 48, 3)).save(folder / "style.png")
    writer = VideoWriter(str(folder / "clip.mp4"), 10.0, (40, 48))
    for k in range(3):
        writer.write(big[:, k * SHIFT:k * SHIFT + 48].astype(np.float32))
    writer.close()
    return folder


def run_main(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_images_folders_and_a_video_one_output_each_and_the_style_once(inputs, fake_weights, tmp_path, capsys,
                                                                      monkeypatch):
    from engine_server.cli import style_args

    puts = []
    original = style_args.RunGramCache.put
    monkeypatch.setattr(style_args.RunGramCache, "put", lambda self, *a: (puts.append(a[:2]), original(self, *a)))
    out = tmp_path / "out"
    code, stdout, stderr = run_main(["batch", inputs / "style.png", inputs / "a.png", inputs / "b.jpg",
                                     inputs / "shot", inputs / "clip.mp4", "-o", out, "--weights", fake_weights,
                                     "--iterations", "2"], capsys)
    assert code == 0, stderr
    names = sorted(os.listdir(out))
    assert names == ["a.png", "b.png", "clip.mp4", "clip_00001.png", "clip_00002.png", "clip_00003.png",
                     "f1.png", "f2.png", "f3.png"]
    assert stdout.splitlines()[0] == str(out / "a.png") and len(stdout.splitlines()) == 9
    assert len(list(VideoReader(str(out / "clip.mp4")))) == 3
    assert Image.open(out / "b.png").size == (48, 40)
    # Eight pictures of one size: the style's Grams were computed once (one put per style layer).
    assert len(puts) == 5 and len(set(puts)) == 1


def test_bad_inputs_get_one_line_naming_the_file_and_the_rest_is_done(inputs, fake_weights, tmp_path, capsys):
    (inputs / "empty").mkdir()
    (inputs / "broken.mp4").write_bytes(b"no video here" * 20)
    Image.fromarray(smooth(30, 30, 7)).save(inputs / "shot" / "f4.png")     # another size in the shot
    Image.fromarray(smooth(40, 48, 8)).save(inputs / "shot" / "f5.png")
    out = tmp_path / "out"
    code, stdout, stderr = run_main(["batch", inputs / "style.png", inputs / "empty", inputs / "broken.mp4",
                                     inputs / "nope.png", inputs / "shot", inputs / "a.png", "-o", out,
                                     "--weights", fake_weights, "--iterations", "2", "--frames"], capsys)
    assert code == 2
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 4, stderr
    assert "empty has no images" in errors[0]
    assert "broken.mp4 cannot be read" in errors[1]
    assert "nope.png does not exist" in errors[2]
    assert "frame %s is 30x30" % (inputs / "shot" / "f4.png") in errors[3] and "f1.png" in errors[3]
    assert sorted(os.listdir(out)) == ["a.png", "f1.png", "f2.png", "f3.png"]     # kept, and the rest ran
    assert "Traceback" not in stderr


def test_nothing_usable_is_one_line_per_input_and_no_model(tmp_path, inputs, capsys):
    code, _, stderr = run_main(["batch", inputs / "style.png", tmp_path / "none", "-o", tmp_path / "out",
                                "--weights", tmp_path / "absent.h5"], capsys)
    assert code == 2
    assert stderr.splitlines() == ["error: input %s does not exist" % (tmp_path / "none"),
                                   "error: nothing to stylize: every input was refused"]


def test_two_inputs_for_one_output_and_output_over_input_are_refused(inputs, fake_weights, tmp_path, capsys):
    Image.fromarray(smooth(40, 48, 9)).save(inputs / "a.jpg")
    code, _, stderr = run_main(["batch", inputs / "style.png", inputs / "a.png", inputs / "a.jpg", inputs / "shot",
                                "-o", inputs / "shot", "--weights", fake_weights, "--iterations", "1"], capsys)
    assert code == 2
    assert "a.png and %s would both write" % (inputs / "a.jpg") in stderr
    assert "would overwrite the input" in stderr
    assert os.path.exists(inputs / "shot" / "a.png")


def frames_flicker(folder, names):
    images = [np.asarray(Image.open(os.path.join(folder, n)), np.float32) for n in names]
    return np.mean([np.mean(np.abs(b[4:-4, 4:-4 - SHIFT] - a[4:-4, 4 + SHIFT:-4])) for a, b in zip(images, images[1:])])


def test_frames_flicker_less_than_independent_frames(inputs, fake_weights, tmp_path, capsys):
    common = ["batch", inputs / "style.png", inputs / "shot", "--weights", fake_weights, "--iterations", "20"]
    assert run_main(common + ["-o", tmp_path / "alone"], capsys)[0] == 0
    assert run_main(common + ["-o", tmp_path / "shot", "--frames"], capsys)[0] == 0
    names = ["f1.png", "f2.png", "f3.png"]
    alone, held = frames_flicker(tmp_path / "alone", names), frames_flicker(tmp_path / "shot", names)
    # Tiny and short, so a modest margin here; the >= 2x target is measured by benchmarks/bench_frames.py.
    # 20 iterations, not fewer: after a few, independent frames are still close to their own (nearly
    # equal) contents, while each later frame of a shot goes on stylizing from the previous result.
    assert held < 0.75 * alone, (held, alone)


def test_progress_lines_without_a_terminal_and_save_every(inputs, fake_weights, tmp_path):
    out = tmp_path / "o.png"
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-m", "engine_server", "stylize", str(inputs / "a.png"),
                           str(inputs / "style.png"), "-o", str(out), "--weights", fake_weights, "--iterations", "4",
                           "--save-every", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    # The percentage is the work done (core Progress.fraction: pixels x evaluations, set-up included).
    first_percent = int(lines[0].split("%")[0])
    assert 0 < first_percent < 100 and lines[0][4:].startswith(" iteration 1/4"), lines
    assert lines[-1].startswith("100% iteration 4/4"), lines
    assert all("\r" not in line for line in lines)
    assert os.path.exists(tmp_path / "o_iter2.png") and os.path.exists(tmp_path / "o_iter4.png")


def test_progress_lines_come_every_few_seconds():
    import io

    from engine_server.cli.job_output import ProgressLines

    now = [0.0]
    stream = io.StringIO()
    lines = ProgressLines(stream, interval=5.0, clock=lambda: now[0])
    for iteration in range(1, 11):
        lines({"iteration": iteration, "iterations": 10, "eta_s": 10.0 - iteration})
        now[0] += 2.0
    assert [line.split()[0] for line in stream.getvalue().splitlines()] == ["10%", "40%", "70%", "100%"]


def test_ctrl_c_writes_the_image_so_far_and_says_where(inputs, fake_weights, tmp_path):
    out = tmp_path / "o.png"
    env = dict(os.environ, PYTHONPATH=REPO)
    process = subprocess.Popen([sys.executable, "-m", "engine_server", "stylize", str(inputs / "a.png"),
                                str(inputs / "style.png"), "-o", str(out), "--weights", fake_weights,
                                "--iterations", "5000", "--json"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(process.stdout.readline())
        assert first["iteration"] == 1
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    assert stderr.startswith("interrupted at iteration ") and stderr.strip().endswith(
        "/5000; the image so far is in %s" % out), stderr
    assert Image.open(out).size == (48, 40)


def test_ctrl_c_in_a_batch_keeps_what_is_done_and_the_picture_so_far(inputs, fake_weights, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=REPO)
    process = subprocess.Popen([sys.executable, "-m", "engine_server", "batch", str(inputs / "style.png"),
                                str(inputs / "shot"), "-o", str(out), "--weights", fake_weights, "--frames",
                                "--iterations", "3", "--frame-iterations", "5000", "--json"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            event = json.loads(process.stdout.readline())
            if event["name"] == "f2":
                break
            if "written" in event:
                assert event == {"written": str(out / "f1.png"), "name": "f1", "task": 0, "tasks": 3}
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    assert stderr.startswith("interrupted at iteration ") and stderr.strip().endswith(
        "/5000; the image so far is in %s; 1 earlier output(s) are in %s" % (out / "f2.png", out)), stderr
    assert sorted(os.listdir(out)) == ["f1.png", "f2.png"]


def test_a_library_style_by_name_and_an_unknown_one(inputs, fake_weights, tmp_path, capsys):
    from engine_server.library.style_library import StyleLibrary

    library = tmp_path / "library"
    StyleLibrary(str(library)).add_file(str(inputs / "style.png"), name="Starry")
    out = tmp_path / "o.png"
    code, _, stderr = run_main(["stylize", inputs / "a.png", "lib:starry", "-o", out, "--library", library,
                                "--weights", fake_weights, "--iterations", "2"], capsys)
    assert code == 0, stderr
    assert Image.open(out).size == (48, 40)
    code, _, stderr = run_main(["stylize", inputs / "a.png", "lib:Monet", "-o", out, "--library", library,
                                "--weights", fake_weights, "--iterations", "2"], capsys)
    assert code == 2 and stderr == "error: lib:Monet: no library style with that id or name (have: Starry)\n"


def test_engine_swallowing_the_content_path_is_explained(inputs, tmp_path, capsys):
    code, _, stderr = run_main(["stylize", "--engine", inputs / "a.png", inputs / "style.png", "-o",
                                tmp_path / "o.png"], capsys)
    assert code == 2 and stderr.count("\n") == 1 and "write --engine=ENDPOINT" in stderr


def test_batch_through_a_running_engine_with_a_library_style(engine, inputs, fake_weights, tmp_path):
    from shared.client import Client

    client = Client(engine.endpoint, autostart=False)
    client.add_style(path=str(inputs / "style.png"), name="Starry")
    client.close()
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "engine_server", "batch", "lib:Starry", str(inputs / "a.png"),
                           str(inputs / "b.jpg"), "-o", str(out), "--iterations", "2", "--save-every", "1",
                           "--engine=" + engine.endpoint],
                          cwd=REPO, env=engine.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["a.png", "a_iter1.png", "a_iter2.png", "b.png", "b_iter1.png", "b_iter2.png"]
    # --frames through the engine: tests/test_protocol_frames.py.


def test_a_batch_shows_the_time_left_for_the_whole_batch():
    import argparse

    from engine_server.cli.batch_run import Batch

    batch = Batch(argparse.Namespace(json=False, style="s.png"), {}, None, [], lambda message: None)
    batch.clock = lambda: 50.0
    batch.started = 0.0
    batch.task = ("f3", 2, 4)                       # the third of four pictures, half done: 62.5 % of the batch
    fields = batch.batch_eta({"iteration": 5, "iterations": 10, "eta_s": 3.0})
    assert fields["eta_s"] == pytest.approx(50.0 * 0.375 / 0.625)
