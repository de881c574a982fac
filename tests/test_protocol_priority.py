"""Preview jobs (issue 16, item 2), against a real engine: a preview runs ahead of a running normal job,
which is paused between iterations and then goes on; a newer preview from the same client supersedes
the older one ("cancelled", reason "superseded"); a bad priority is refused by name."""


import time

import pytest

from shared import protocol as p
from shared.client import Client, JobFailed
from shared.protocol import Pixels, StyleRef
from shared.validation import validate_submit

IMG = Pixels(32, 32, 3, "u8", bytes(range(256)) * 12)
STYLE = StyleRef.pixels(Pixels(16, 16, 3, "u8", bytes(range(256)) * 3), name="ramp")
HANG_S = 120.0
LONG = {"iterations": 10000, "preview_interval_s": 0, "optimizer": "adam"}   # L-BFGS may stop converged


def iterations_of(events):
    return [event.header["iteration"] for event in events if event.type == "progress"]


def test_a_preview_runs_ahead_of_a_running_job_which_then_goes_on(engine):
    with Client(engine.endpoint, autostart=False) as artist, Client(engine.endpoint, autostart=False) as other:
        assert "priority" in artist.welcome["capabilities"]
        full = other.submit(IMG, [STYLE], LONG)
        before = [full.poll(HANG_S)]
        assert before[0].type == "progress"
        preview = artist.submit(IMG, [STYLE], {"iterations": 6, "preview_interval_s": 0}, priority="preview")
        assert preview.queue_position == 0
        final = preview.wait(HANG_S)
        assert final.type == "result", final.header
        assert not full.done, "the full job must only have been paused"
        deadline = time.monotonic() + HANG_S      # the preview's result is sent just before it is retired
        while (other.status().get("running") or {}).get("job") != full.id:
            assert time.monotonic() < deadline, other.status()
            time.sleep(0.05)
        assert other.status()["running"]["paused"] == 0
        after = []
        while len(iterations_of(after)) < 3:       # it goes on where it was
            event = full.poll(HANG_S)
            assert event is not None and event.type == "progress", event and event.header
            after.append(event)
        seen = iterations_of(before + after)
        assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
        full.cancel()
        assert full.wait(HANG_S).type in ("cancelled", "result")
    log = _engine_log(engine)
    assert "job %d paused for preview job %d" % (full.id, preview.id) in log
    assert "job %d resumed" % full.id in log


def _engine_log(engine):
    import os
    with open(os.path.join(engine.home, "state", "neural-style", "engine.log"), encoding="utf-8") as f:
        return f.read()


def test_a_newer_preview_supersedes_the_older_one_of_the_same_client(engine):
    with Client(engine.endpoint, autostart=False) as artist, Client(engine.endpoint, autostart=False) as other:
        older = artist.submit(IMG, [STYLE], LONG, priority="preview")
        assert older.poll(HANG_S).type == "progress"
        others = other.submit(IMG, [STYLE], {"iterations": 3, "preview_interval_s": 0}, priority="preview")
        newer = artist.submit(IMG, [STYLE], {"iterations": 3, "preview_interval_s": 0}, priority="preview")
        ended = older.wait(HANG_S)
        assert ended.type == "cancelled" and ended.header["reason"] == p.SUPERSEDED, ended.header
        # Another client's preview is not superseded by this one; previews run in order.
        assert others.wait(HANG_S).type == "result"
        assert newer.wait(HANG_S).type == "result"
        plain = artist.submit(IMG, [STYLE], LONG, priority="preview")
        assert plain.poll(HANG_S).type == "progress"
        plain.cancel()
        cancelled = plain.wait(HANG_S)
        assert cancelled.type == "cancelled" and cancelled.header["reason"] == "cancelled", cancelled.header


def test_a_bad_priority_is_refused_by_name(engine):
    frames = p.build_submit(IMG, [STYLE], {"iterations": 2}, priority="urgent")
    with pytest.raises(p.ProtocolError) as caught:
        validate_submit(p.decode_header(frames[0]), [None] + frames[1:], p.DEFAULT_LIMITS)
    assert (caught.value.code, caught.value.field) == (p.E_INVALID, "priority")
    assert "'normal', 'preview'" in caught.value.message
    with Client(engine.endpoint, autostart=False) as client:
        with pytest.raises(ValueError):
            client.submit(IMG, [STYLE], priority="urgent")
        # Straight over the wire, as an older or foreign client could send it.
        client.connect()
        frames[0] = p.pack_header(dict(p.decode_header(frames[0]), req=99))
        with client._lock:
            client._send(frames)
            with pytest.raises(JobFailed) as failed:
                client._await_reply(99)
        assert (failed.value.code, failed.value.field) == (p.E_INVALID, "priority")
        assert client.submit(IMG, [STYLE], {"iterations": 2}).wait(HANG_S).type == "result"
