"""Protocol encoding/validation, endpoint discovery and the engine's pixel conversions (no engine process)."""

import os

import msgpack
import numpy as np
import pytest

from shared import endpoints
from shared import protocol as p
from shared import validation
from shared.protocol import Pixels, ProtocolError, StyleRef

LIMITS = dict(p.DEFAULT_LIMITS)


def rgba_u8(width=8, height=6, seed=0):
    data = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    return Pixels(width, height, 4, "u8", data.tobytes())


def submit_frames(**kwargs):
    image = kwargs.pop("image", rgba_u8())
    styles = kwargs.pop("styles", [StyleRef.pixels(rgba_u8(4, 4, 1), name="s")])
    return p.build_submit(image, styles, kwargs.pop("options", {"iterations": 3}), **kwargs)


def error_of(frames):
    header = p.decode_header(frames[0])
    with pytest.raises(ProtocolError) as caught:
        validation.validate_submit(header, frames, LIMITS)
    return caught.value


# ---------------------------------------------------------------------------------------------- headers

def test_build_and_validate_submit_round_trip():
    mask = Pixels(8, 6, 1, "u8", bytes(range(48)))
    frames = submit_frames(mask=mask, options={"iterations": 7, "feather": 2, "preview_interval_s": 0.5,
                                               "style_layers": ["conv1_1", "conv2_1"]}, req=5)
    header = p.decode_header(frames[0])
    assert header["v"] == 1 and header["type"] == "submit" and header["req"] == 5
    request = validation.validate_submit(header, frames, LIMITS)
    assert (request.image.width, request.image.height, request.image.channels) == (8, 6, 4)
    assert bytes(request.mask.data) == bytes(range(48))
    assert request.options["iterations"] == 7 and request.options["feather"] == 2
    assert request.options["preview_interval_s"] == 0.5
    assert request.options["style_layer_weights"] == (1.0, 1.0)     # equal, as jcjohnson's default
    assert request.styles[0].kind == "pixels" and request.styles[0].name == "s"
    # pixels travel as frames, never inside the msgpack map
    assert len(frames[0]) < 1000 and len(frames) == 4


@pytest.mark.parametrize("frame0, code", [
    (b"", p.E_BAD_MESSAGE),
    (b"\xc1", p.E_BAD_MESSAGE),
    (msgpack.packb([1, 2]), p.E_BAD_MESSAGE),
    (msgpack.packb({"type": "hello"}), p.E_MISSING),
    (msgpack.packb({"v": 2, "type": "hello"}), p.E_VERSION),
    (msgpack.packb({"v": "1", "type": "hello"}), p.E_VERSION),
    (msgpack.packb({"v": 1}), p.E_MISSING),
    (msgpack.packb({"v": 1, "type": 7}), p.E_INVALID),
])
def test_bad_headers_are_refused_with_a_code(frame0, code):
    with pytest.raises(ProtocolError) as caught:
        p.decode_header(frame0)
    assert caught.value.code == code
    assert caught.value.message


def test_header_size_limit():
    with pytest.raises(ProtocolError) as caught:
        p.decode_header(msgpack.packb({"v": 1, "type": "hello", "pad": "x" * 2000}), max_bytes=1000)
    assert caught.value.code == p.E_TOO_LARGE


def test_frame_length_must_match_the_descriptor():
    frames = submit_frames()
    frames[1] = frames[1][:-1]       # truncated image frame
    error = error_of(frames)
    assert error.code == p.E_FRAME and error.field == "image.frame"
    assert "8x6 pixels x 4 channel(s) x 1 byte(s) = 192" in error.message


def test_huge_declared_size_with_a_tiny_frame():
    frames = submit_frames()
    header = p.decode_header(frames[0])
    header["image"].update(width=100000, height=100000)
    error = error_of([p.pack_header(header)] + frames[1:])
    assert error.code == p.E_TOO_LARGE and error.field == "image"


@pytest.mark.parametrize("change, code, field", [
    (lambda h: h["image"].update(dtype="u32"), p.E_INVALID, "image.dtype"),
    (lambda h: h["image"].update(channels=5), p.E_INVALID, "image.channels"),
    (lambda h: h["image"].update(width=-3), p.E_INVALID, "image.width"),
    (lambda h: h["image"].update(width=True), p.E_INVALID, "image.width"),
    (lambda h: h["image"].update(frame=9), p.E_FRAME, "image.frame"),
    (lambda h: h["styles"][0]["image"].update(frame=1), p.E_FRAME, "styles[0].image.frame"),
    (lambda h: h.pop("image"), p.E_MISSING, "image"),
    (lambda h: h.update(styles=[]), p.E_INVALID, "styles"),
    (lambda h: h.update(styles="x"), p.E_INVALID, "styles"),
    (lambda h: h["styles"][0].update(kind="url"), p.E_INVALID, "styles[0].kind"),
    (lambda h: h["styles"][0].update(weight=float("nan")), p.E_INVALID, "styles[0].weight"),
    (lambda h: h.update(styles=[{"kind": "file", "path": ""}]), p.E_INVALID, "styles[0].path"),
    (lambda h: h["options"].update(iterations=0), p.E_INVALID, "options.iterations"),
    (lambda h: h["options"].update(iterations=2 ** 62), p.E_INVALID, "options.iterations"),
    (lambda h: h["options"].update(bogus=1), p.E_INVALID, "options.bogus"),
    (lambda h: h["options"].update(feather=-1), p.E_INVALID, "options.feather"),
    (lambda h: h["options"].update(preview_interval_s="soon"), p.E_INVALID, "options.preview_interval_s"),
    (lambda h: h["options"].update(pooling="median"), p.E_INVALID, "options.pooling"),
    (lambda h: h.update(options=[1]), p.E_INVALID, "options"),
    (lambda h: h.update(styles=[{"kind": "library", "id": "a"}] * 9), p.E_TOO_LARGE, "styles"),
])
def test_every_field_is_validated(change, code, field):
    frames = submit_frames()
    header = p.decode_header(frames[0])
    change(header)
    error = error_of([p.pack_header(header)] + frames[1:])
    assert (error.code, error.field) == (code, field), error.message


def test_unreferenced_frames_are_refused():
    frames = submit_frames() + [b"extra"]
    error = error_of(frames)
    assert error.code == p.E_FRAME and "not referenced" in error.message


def test_mask_must_match_the_image():
    mask = Pixels(3, 3, 1, "u8", bytes(9))
    error = error_of(submit_frames(mask=mask))
    assert error.field == "mask"


def test_iteration_limit_of_the_engine():
    frames = submit_frames(options={"iterations": 500})
    with pytest.raises(ProtocolError) as caught:
        validation.validate_submit(p.decode_header(frames[0]), frames, dict(LIMITS, max_iterations=100))
    assert caught.value.code == p.E_TOO_LARGE and caught.value.field == "options.iterations"


# ---------------------------------------------------------------------------------------------- endpoints

def test_endpoint_discovery_order(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("NEURAL_STYLE_ENDPOINT", raising=False)
    assert endpoints.resolve() == "ipc://%s/neural-style/engine.sock" % tmp_path
    monkeypatch.setenv("NEURAL_STYLE_ENDPOINT", "tcp://127.0.0.1:6000")
    assert endpoints.resolve() == "tcp://127.0.0.1:6000"
    assert endpoints.resolve("ipc:///tmp/x.sock") == "ipc:///tmp/x.sock"


@pytest.mark.parametrize("endpoint, loopback", [
    ("ipc:///tmp/a.sock", True), ("tcp://127.0.0.1:5", True), ("tcp://[::1]:5", True),
    ("tcp://localhost:5", True), ("tcp://0.0.0.0:5", False), ("tcp://*:5", False),
    ("tcp://192.168.1.2:5", False), ("tcp://eth0:5", False),
])
def test_loopback_detection(endpoint, loopback):
    assert endpoints.is_loopback(endpoint) is loopback


@pytest.mark.parametrize("endpoint", ["http://x", "ipc://relative.sock", "tcp://127.0.0.1", "tcp://:5",
                                      "ipc:///" + "x" * 200])
def test_bad_endpoints_say_why(endpoint):
    with pytest.raises(endpoints.EndpointError) as caught:
        endpoints.parse(endpoint)
    assert str(caught.value)


# ---------------------------------------------------------------------------------------------- pixels (engine side)

def test_decode_encode_formats():
    from engine_server.daemon import pixels
    rng = np.random.default_rng(3)
    u16 = rng.integers(0, 65536, (5, 7, 4), dtype=np.uint16)
    source = Pixels(7, 5, 4, "u16", u16.astype("<u2").tobytes())
    rgb, alpha = pixels.decode(source)
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb, u16[..., :3] / 65535.0 * 255.0, rtol=1e-5)
    np.testing.assert_allclose(alpha, u16[..., 3] / 65535.0, rtol=1e-5)
    back = pixels.encode(rgb, alpha, source)
    assert (back.width, back.height, back.channels, back.dtype) == (7, 5, 4, "u16")
    assert np.array_equal(np.frombuffer(back.data, "<u2").reshape(5, 7, 4), u16)

    gray = Pixels(7, 5, 1, "u8", rng.integers(0, 256, 35, dtype=np.uint8).tobytes())
    rgb, alpha = pixels.decode(gray)
    assert alpha is None and np.array_equal(rgb[..., 0], rgb[..., 2])
    back = pixels.encode(rgb, None, gray)
    assert back.channels == 1 and bytes(back.data) == bytes(gray.data)


def test_float_round_trip_with_scale_255_is_exact():
    from engine_server.daemon import pixels
    from engine_server.cli.remote import _pixels, _unpack
    rgb = np.random.default_rng(4).uniform(0, 255, (60, 50, 3)).astype(np.float32)
    sent = _pixels(rgb)
    assert sent.descriptor(1)["scale"] == 255.0
    decoded, _ = pixels.decode(sent)
    assert np.array_equal(decoded, rgb)
    assert np.array_equal(_unpack(pixels.encode(decoded, None, sent)), rgb)
    # scale 1 (the default) means 0..1
    unit = Pixels(50, 60, 3, "f32", (rgb / 255).astype("<f4").tobytes())
    np.testing.assert_allclose(pixels.decode(unit)[0], rgb, rtol=1e-5)


def test_scale_is_only_for_floats():
    frames = submit_frames()
    header = p.decode_header(frames[0])
    header["image"]["scale"] = 255.0
    error = error_of([p.pack_header(header)] + frames[1:])
    assert error.field == "image.scale"


def test_linear_transfer_round_trip():
    from engine_server.daemon import pixels
    linear = np.random.default_rng(5).uniform(0, 1, (4, 4, 3)).astype("<f4")
    source = Pixels(4, 4, 3, "f32", linear.tobytes(), transfer="linear")
    rgb, _ = pixels.decode(source)
    assert rgb.max() > linear.max() * 255 * 0.99      # sRGB-encoded values are brighter
    back = pixels.encode(rgb, None, source)
    assert back.transfer == "linear"
    np.testing.assert_allclose(np.frombuffer(back.data, "<f4").reshape(4, 4, 3), linear, atol=1e-5)


def test_soft_mask_feathers_inside_the_selection():
    from engine_server.daemon import pixels
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 255
    soft = pixels.soft_mask(Pixels(20, 20, 1, "u8", mask.tobytes()), feather=3)
    assert soft[0, 0] == 0 and soft[4, 10] == 0            # outside: transparent
    assert soft[5, 10] == pytest.approx(1 / 3)               # edge pixel
    assert soft[6, 10] == pytest.approx(2 / 3)
    assert soft[10, 10] == 1.0                               # deep inside
    hard = pixels.soft_mask(Pixels(20, 20, 1, "u8", mask.tobytes()), feather=0)
    assert hard[5, 10] == 1.0


def test_mask_adds_alpha_to_rgb_and_multiplies_existing_alpha():
    from engine_server.daemon import pixels
    rgb = np.full((4, 4, 3), 100, np.float32)
    mask = np.array([[0, 0.5, 1, 1]] * 4, np.float32)
    out = pixels.encode(rgb, None, Pixels(4, 4, 3, "u8", bytes(48)), mask)
    assert out.channels == 4
    assert list(np.frombuffer(out.data, np.uint8).reshape(4, 4, 4)[0, :, 3]) == [0, 128, 255, 255]
    out = pixels.encode(rgb, np.full((4, 4), 0.5, np.float32), Pixels(4, 4, 2, "f32", bytes(128)), mask)
    values = np.frombuffer(out.data, "<f4").reshape(4, 4, 2)
    np.testing.assert_allclose(values[0, :, 1], [0, 0.25, 0.5, 0.5])


def test_result_is_resized_to_the_sent_size():
    from engine_server.daemon import pixels
    small = np.random.default_rng(6).uniform(0, 255, (16, 12, 3)).astype(np.float32)
    out = pixels.encode(small, None, Pixels(24, 32, 3, "u8", bytes(24 * 32 * 3)))
    assert (out.width, out.height) == (24, 32) and len(out.data) == 24 * 32 * 3


def test_client_module_is_python39_syntax_and_numpy_free():
    import ast
    shared = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shared")
    for name in ("protocol.py", "client.py", "endpoints.py"):
        with open(os.path.join(shared, name), encoding="utf-8") as f:
            source = f.read()
        ast.parse(source, feature_version=(3, 9))
        assert "numpy" not in source and "from shared" not in source and "import shared" not in source


# ---------------------------------------------------------------------------------------------- fuzz (in-process)

def _fuzz_server():
    import zmq
    from engine_server.daemon.server import EngineServer
    server = EngineServer("ipc:///tmp/nse-fuzz-never-bound.sock", run_job=lambda job, emit: None,
                          limits={"max_pixels": 64 * 64, "max_queue": 2}, context=zmq.Context.instance())
    sent = []
    server._send_frames = lambda identity, frames: sent.append(frames)
    return server, sent


def test_fuzzed_messages_always_get_a_proper_answer():
    """Random and mutated messages straight into the engine's handler: never an exception, never an
    "internal" error, exactly one answer to anything but a heartbeat."""
    import zmq
    from hypothesis import HealthCheck, given, settings, strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(),
                        st.text(max_size=20), st.binary(max_size=20))
    values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                          max_leaves=12)
    keys = st.sampled_from(["v", "type", "req", "job", "image", "mask", "styles", "options", "width", "height",
                            "channels", "dtype", "frame", "path", "id", "ids", "name", "kind"])
    types = st.sampled_from(list(p.CLIENT_TYPES) + ["welcome", "", "x" * 100])
    good = p.build_submit(rgba_u8(), [StyleRef.pixels(rgba_u8(4, 4, 1))], {"iterations": 2})
    good_header = p.decode_header(good[0])

    @st.composite
    def messages(draw):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            return [draw(st.binary(max_size=64))]
        if choice == 1:
            header = {"v": 1, "type": draw(types)}
            header.update(draw(st.dictionaries(keys, values, max_size=5)))
        else:
            header = dict(good_header)
            for key in draw(st.lists(keys, max_size=3)):
                header[key] = draw(values)
            if choice == 3 and isinstance(header.get("image"), dict):
                header["image"] = dict(header["image"], **draw(st.dictionaries(keys, values, max_size=2)))
        frames = draw(st.lists(st.binary(max_size=300), max_size=3)) if choice != 2 else good[1:]
        try:
            return [p.pack_header(header)] + frames
        except (OverflowError, ValueError, TypeError):
            return [b"\x91"] + frames

    server, sent = _fuzz_server()

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(messages())
    def check(frames):
        del sent[:]
        server._handle(b"\x00fuzz", [zmq.Frame(f) for f in frames])
        answers = [p.decode_header(reply[0]) for reply in sent]
        for answer in answers:
            assert answer.get("code") != p.E_INTERNAL, answer
            if answer["type"] == p.ERROR:
                assert answer["code"] and answer["message"]
        try:
            msg_type = msgpack.unpackb(frames[0], raw=False).get("type")
        except Exception:
            msg_type = None     # not even a map: must be answered
        if msg_type not in (p.HEARTBEAT, p.BYE) or len(frames) > 1:
            assert len(answers) == 1, frames[0][:80]

    try:
        check()
    finally:
        server.router.close(linger=0)
        server.outbox.close()


def test_job_queue_bounds_jobs_and_bytes():
    from engine_server.daemon.jobs import Job, JobQueue, QueueFull

    def job(job_id, nbytes):
        request = validation.SubmitRequest(Pixels(1, nbytes, 1, "u8", bytes(nbytes)), None, [], {})
        return Job(job_id, b"client", request)

    queue = JobQueue(max_queue=3, max_bytes=1000)
    assert queue.put(job(1, 2000)) == 0          # alone in the queue: always accepted
    with pytest.raises(QueueFull) as caught:
        queue.put(job(2, 10))                     # 2010 bytes would wait
    assert "MiB of pixels" in str(caught.value)
    running = queue.take()
    assert running.id == 1 and queue.put(job(3, 400)) == 1 and queue.put(job(4, 400)) == 2
    with pytest.raises(QueueFull):
        queue.put(job(5, 400))
    assert queue.cancel(running) == "running" and running.cancel_event.is_set()
    queue.finish(running)
    assert queue.take().id == 3
    assert queue.put(job(6, 10)) == 2 and queue.put(job(7, 10)) == 3
    with pytest.raises(QueueFull) as caught:
        queue.put(job(8, 1))                      # max_queue jobs waiting
    assert "3 jobs waiting" in str(caught.value)
    assert [j.id for j in queue.stop()] == [4, 6, 7] and queue.take() is None


@pytest.mark.parametrize("outcome", ["result", "cancelled", "error"])
def test_a_jobs_final_message_leaves_after_the_job_is_finished(outcome):
    """A client that asks for the status on a job's final message must not find it still running
    (test_cancel_while_queued_and_while_running saw that race)."""
    from engine_server.core.errors import Cancelled, InputError
    from engine_server.daemon.jobs import Job, JobQueue, Worker

    def run_job(job, emit):
        if outcome == "result":
            emit(job, p.message(p.RESULT, job=job.id), ())
        elif outcome == "cancelled":
            raise Cancelled()
        else:
            raise InputError("no")

    queue = JobQueue(max_queue=3, max_bytes=1000)
    seen = []
    worker = Worker(queue, run_job, lambda job, header, frames: seen.append((header["type"], queue.running)))
    request = validation.SubmitRequest(Pixels(1, 1, 1, "u8", b"\0"), None, [], {})
    queue.put(Job(1, b"client", request))
    worker._run_and_finish(queue.take())
    assert seen == [({"result": p.RESULT, "cancelled": p.CANCELLED, "error": p.ERROR}[outcome], None)]
