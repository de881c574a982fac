"""A fresh engine warms up before its first job (issue 16.3): a preview-sized job of its own traces the
passes, so the first preview traces nothing; it runs while no job and no client is there, and gives
way to either at its next pass. How much faster the first preview is lives in
benchmarks/bench_preview.py, not here."""

import threading
import time

from engine_server.core.model import VGG19Features
from engine_server.daemon.job_runner import StylizeRunner
from engine_server.daemon.jobs import WARM_UP_AFTER_S, Job, JobQueue, Worker
from shared import protocol as p
from shared.protocol import Pixels, StyleRef
from shared.validation import validate_submit

HANG_S = 120.0


def ramp(width, height, channels, seed=0):
    return Pixels(width, height, channels, "u8",
                  bytes((x * 7 + y * 3 + c * 50 + seed) % 256 for y in range(height) for x in range(width)
                        for c in range(channels)))


def preview_job(job_id, width, height, options=None):
    """A submit as a plugin's preview sends it: the layer's pixels at any size, max_size 160."""
    frames = p.build_submit(ramp(width, height, 4), [StyleRef.pixels(ramp(96, 80, 3, seed=40), name="s")],
                            dict({"iterations": 2, "max_size": 160, "preview_interval_s": 0}, **(options or {})),
                            priority=p.PREVIEW)
    return Job(job_id, b"artist", validate_submit(p.decode_header(frames[0]), [None] + frames[1:], p.DEFAULT_LIMITS))


def tracing_counts(model):
    """Traces of the objective and of each traced feature pass (content, style Grams) so far."""
    return (getattr(model, "traces", 0),
            {key: function.experimental_get_tracing_count() for key, function in model._feature_functions.items()})


def run(runner, job):
    sent = []
    runner(job, lambda job, header, frames: sent.append(header["type"]))
    assert sent[-1] == p.RESULT, sent


def test_after_the_warm_up_a_first_preview_traces_nothing(fake_weights):
    model = VGG19Features.load(fake_weights)
    runner = StylizeRunner(model)
    assert tracing_counts(model) == (0, {})
    runner.warm_up(lambda: False)
    warm = tracing_counts(model)
    assert warm[0] == 1 and len(warm[1]) == 2 and set(warm[1].values()) == {1}, warm
    # Another layer size and aspect, and another style size: sizes are arguments, nothing is traced again.
    run(runner, preview_job(1, 200, 90))
    assert tracing_counts(model) == warm
    # Other layers or pooling need their own trace (the warm-up covers the default options only).
    run(runner, preview_job(2, 64, 64, {"pooling": "avg"}))
    assert tracing_counts(model)[0] == 2


def test_the_warm_up_gives_way_to_a_job_before_its_next_objective_pass(fake_weights):
    model = VGG19Features.load(fake_weights)
    runner = StylizeRunner(model)
    asked = []

    def job_waiting():
        asked.append(model.passes)
        return len(asked) > 1       # a job arrives once the warm-up has begun

    runner.warm_up(job_waiting)     # returns (the job runs next), raises nothing
    # It stopped after the targets' feature passes, before the objective (the costly trace).
    assert model.passes <= 2 and getattr(model, "traces", 0) == 0, (model.passes, asked)


def test_the_worker_warms_up_first_and_a_queued_job_stops_the_warm_up():
    queue = JobQueue(max_queue=3)
    steps, ran = [], []
    job_started = threading.Event()

    class Runner:
        def __call__(self, job, emit):
            ran.append((job.id, len(steps)))
            job_started.set()

        def warm_up(self, should_stop):
            while not should_stop():       # a warm-up longer than the wait for the first job
                steps.append(1)
                if len(steps) == 3:
                    queue.put(Job(1, b"artist", None))
                assert len(steps) < 1000, "the warm-up did not give way to the waiting job"

    worker = Worker(queue, Runner(), lambda job, header, frames: None)
    worker.start()
    try:
        assert job_started.wait(30.0)
        assert ran == [(1, 3)]
    finally:
        queue.stop()
        worker.join(HANG_S)
    assert not worker.is_alive()
    # While a client is connected there is no warm-up (its passes could keep the I/O loop from
    # answering it for seconds on a busy machine); it starts once the engine had none for a while.
    queue, steps, ran = JobQueue(max_queue=3), [], []
    job_started.clear()
    client = {"here": True}
    worker = Worker(queue, Runner(), lambda job, header, frames: None, has_clients=lambda: client["here"])
    worker.start()
    try:
        time.sleep(WARM_UP_AFTER_S + 0.5)
        assert steps == []
        client["here"] = False
        assert job_started.wait(30.0) and ran == [(1, 3)]
    finally:
        queue.stop()
        worker.join(HANG_S)
    # A job that comes before the warm-up began (WARM_UP_AFTER_S) traces for itself: no warm-up.
    queue, steps, ran = JobQueue(max_queue=3), [], []
    job_started.clear()
    queue.put(Job(2, b"artist", None))
    worker = Worker(queue, Runner(), lambda job, header, frames: None)
    worker.start()
    try:
        assert job_started.wait(30.0)
        assert ran == [(2, 0)]
    finally:
        queue.stop()
        worker.join(HANG_S)
