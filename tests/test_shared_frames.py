"""submit.previous_frame and shared/frames.py without an engine: building and checking the message,
the queue's byte count, and FrameSequence's order, words, refusals and Cancel (a stand-in client)."""

import pytest

from engine_server.daemon.jobs import request_bytes
from shared import protocol as p
from shared import validation
from shared.client import JobFailed
from shared.frames import FrameSequence
from shared.job import Event
from shared.protocol import Pixels, ProtocolError, StyleRef

STYLE = [StyleRef.file("/styles/a.png")]


def pixels(width=8, height=6, channels=3, dtype="u8"):
    return Pixels(width, height, channels, dtype, bytes(width * height * channels * p.DTYPES[dtype]))


def validate(frames):
    return validation.validate_submit(p.decode_header(frames[0]), frames, p.DEFAULT_LIMITS)


def test_previous_frame_round_trip_in_any_layer_format_and_its_bytes_count_in_the_queue():
    image, content, result = pixels(), pixels(channels=4, dtype="u16"), pixels(channels=2, dtype="f32")
    request = validate(p.build_submit(image, STYLE, {"temporal_weight": 30}, previous_frame=(content, result)))
    assert [(x.channels, x.dtype) for x in request.previous_frame] == [(4, "u16"), (2, "f32")]
    assert request.options["temporal_weight"] == 30.0
    assert request_bytes(request) == 8 * 6 * (3 + 8 + 8)
    assert validate(p.build_submit(image, STYLE)).previous_frame is None
    assert validate(p.build_submit(image, STYLE)).options["temporal_weight"] == 100.0
    with pytest.raises(TypeError):
        p.build_submit(image, STYLE, previous_frame=content)


def test_a_previous_frame_of_another_size_is_refused_naming_the_field():
    with pytest.raises(ProtocolError) as caught:
        validate(p.build_submit(pixels(), STYLE, previous_frame=(pixels(), pixels(width=9))))
    assert (caught.value.code, caught.value.field) == ("bad_input", "previous_frame.result")
    assert caught.value.message == "previous_frame.result: expected 8x6 like image, got 9x6"


class FakeJob:
    def __init__(self, events):
        self.events, self.cancelled = list(events), False

    def poll(self, timeout=0.0):
        return self.events.pop(0) if self.events else None

    def cancel(self):
        self.cancelled = True
        self.events = [Event({"type": "cancelled"}, None)]


class FakeClient:
    """Answers each submit with a job of two progress events and a result; refuses frame `refuse`."""

    def __init__(self, refuse=None):
        self.submits, self.refuse = [], refuse

    def submit(self, image, styles, options=None, mask=None, priority="normal", previous_frame=None):
        self.submits.append((image, previous_frame))
        if len(self.submits) - 1 == self.refuse:
            raise JobFailed("bad_input", "previous_frame.content: expected 8x6 like image, got 9x6",
                            "previous_frame.content")
        result = Pixels(8, 6, 3, "u8", bytes([len(self.submits)]) * 144)
        progress = [Event({"type": "progress", "iteration": i, "iterations": 4, "eta_s": 1.0}, None) for i in (1, 2)]
        return FakeJob(progress + [Event({"type": "result"}, result)])


def drive(sequence, limit=100, on_event=None):
    events = []
    for _ in range(limit):
        if sequence.done:
            break
        got = sequence.poll()
        if got is not None:
            events.append(got)
            if on_event is not None:
                on_event(got)
    return events


def test_frames_go_in_order_each_with_the_previous_content_and_result():
    client = FakeClient()
    frames = [pixels() for _ in range(3)]
    read = []
    sequence = FrameSequence(client, 3, lambda k: read.append(k) or frames[k], STYLE)
    texts = []
    events = drive(sequence, on_event=lambda got: got.event.type == "progress" and texts.append(
        sequence.progress_text(got.event.header)))
    assert sequence.done and sequence.finished == 3 and read == [0, 1, 2]
    assert [(got.index, got.count, got.event.type) for got in events if got.event.type != "progress"] == [
        (0, 3, "result"), (1, 3, "result"), (2, 3, "result")]
    assert client.submits[0][1] is None
    for k in (1, 2):
        content, result = client.submits[k][1]
        assert content is frames[k - 1] and result is events[3 * k - 1].event.pixels
    assert texts[0].startswith("8% frame 1/3 \u2013 iteration 1/4") and texts[-1].startswith("83% frame 3/3 \u2013 iteration 2/4")


def test_a_refused_frame_ends_the_sequence_as_an_error_event_and_cancel_between_frames_submits_nothing():
    sequence = FrameSequence(FakeClient(refuse=2), 3, lambda k: pixels(), STYLE)
    events = drive(sequence)
    last = events[-1]
    assert sequence.done and sequence.finished == 2 and (last.index, last.event.type) == (2, "error")
    assert (last.event.header["code"], last.event.header["field"]) == ("bad_input", "previous_frame.content")

    client = FakeClient()
    sequence = FrameSequence(client, 3, lambda k: pixels(), STYLE)
    drive(sequence, on_event=lambda got: got.event.type == "result" and sequence.cancel())
    assert sequence.done and sequence.finished == 1 and len(client.submits) == 1 and sequence.poll() is None

    client = FakeClient()
    sequence = FrameSequence(client, 3, lambda k: pixels(), STYLE)
    events = drive(sequence, on_event=lambda got: got.index == 1 and got.event.type == "progress" and sequence.cancel())
    assert [got.event.type for got in events[-2:]] == ["progress", "cancelled"] and events[-1].index == 1
    assert sequence.done and sequence.finished == 1 and len(client.submits) == 2
