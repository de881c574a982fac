"""Load: 16 clients submit tiny jobs at once, again and again, for a bounded time.

Every job must complete with a correct result or be refused with an explicit `queue_full`, and
every client must receive only its own job's events. The clients are raw DEALER sockets (not
`shared.client.Client`, which would silently drop another client's event) so that a misrouted
message is seen. `run_load` is also what benchmarks/bench_reliability.py runs for 200 jobs.
"""

import os
import random
import shutil
import threading
import time

import msgpack
import pytest
import zmq

from shared import protocol as p
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import running_engine, short_temp_dir
from tests.support.proc_memory import rss_kb

CLIENTS = 16
LOAD_SECONDS = 15.0
MAX_QUEUE = 6                    # smaller than CLIENTS, so "queue_full" really happens
OPTIONS = {"iterations": 2, "max_size": 32, "preview_interval_s": 0.0}


def tiny_image(width, height, seed):
    rng = random.Random(seed)
    return Pixels(width, height, 3, "u8", rng.randbytes(width * height * 3))


STYLE = StyleRef.pixels(tiny_image(16, 16, 99), name="noise")


class LoadClient:
    """One DEALER that submits, waits for its job's end, and records everything it receives."""

    def __init__(self, endpoint, index, stats, wait_s=90.0):
        self.endpoint, self.index, self.stats, self.wait_s = endpoint, index, stats, wait_s
        self.height = 16 + index               # each client's result has its own size
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.own_jobs = set()
        self.req = 0
        self.last_sent = time.monotonic()

    def send(self, frames):
        self.sock.send_multipart(frames, copy=False)
        self.last_sent = time.monotonic()

    def receive(self, deadline):
        """The next non-heartbeat message (header, frames); keeps our heartbeats going."""
        while True:
            now = time.monotonic()
            if now > deadline:
                raise AssertionError("client %d: nothing within the time limit" % self.index)
            if now - self.last_sent > 1.0:
                self.send([p.pack_header(p.message(p.HEARTBEAT))])
            if self.sock.poll(200):
                frames = self.sock.recv_multipart()
                header = msgpack.unpackb(frames[0], raw=False)
                if header["type"] == "heartbeat":
                    continue
                job = header.get("job")
                if job is not None and header["type"] != "accepted" and job not in self.own_jobs:
                    self.stats.foreign(self.index, header)
                    continue
                return header, frames

    def one_job(self):
        """Submit once; -> "result", "queue_full" or raises on anything else."""
        self.req += 1
        image = tiny_image(32, self.height, seed=self.index * 100000 + self.req)
        submitted = time.monotonic()
        self.send(p.build_submit(image, [STYLE], OPTIONS, req=self.req))
        deadline = submitted + self.wait_s
        header, _ = self.receive(deadline)
        assert header.get("req") == self.req, (self.index, header)
        if header["type"] == "error":
            assert header["code"] == "queue_full", (self.index, header)
            return "queue_full", None
        assert header["type"] == "accepted", (self.index, header)
        job = header["job"]
        self.own_jobs.add(job)
        while True:
            header, frames = self.receive(deadline)
            assert header.get("job") == job, (self.index, header)
            if header["type"] == "progress":
                continue
            assert header["type"] == "result", (self.index, header)
            desc = header["image"]
            assert (desc["width"], desc["height"], desc["channels"], desc["dtype"]) == (32, self.height, 3, "u8")
            assert len(frames[desc["frame"]]) == 32 * self.height * 3
            return "result", time.monotonic() - submitted

    def close(self):
        try:
            self.send([p.pack_header(p.message(p.BYE))])
        finally:
            self.sock.close(linger=0)


class LoadStats:
    def __init__(self):
        self.lock = threading.Lock()
        self.results = 0
        self.refused = 0
        self.latencies = []
        self.foreign_events = []
        self.failures = []

    def record(self, outcome, latency):
        with self.lock:
            if outcome == "result":
                self.results += 1
                self.latencies.append(latency)
            else:
                self.refused += 1

    def foreign(self, index, header):
        with self.lock:
            self.foreign_events.append((index, header))


def run_load(endpoint, clients=CLIENTS, seconds=None, jobs=None, on_result=None):
    """16 clients submit at once and keep submitting until `seconds` have passed or `jobs` results
    have come back; a refused client backs off 0.2-0.5 s and submits again. -> LoadStats."""
    stats = LoadStats()
    barrier = threading.Barrier(clients)
    stop_at = time.monotonic() + seconds if seconds else None

    def enough():
        if stop_at is not None and time.monotonic() >= stop_at:
            return True
        return jobs is not None and stats.results >= jobs

    def work(index):
        client = LoadClient(endpoint, index, stats)
        rng = random.Random(index)
        try:
            barrier.wait(60)
            while not enough():
                outcome, latency = client.one_job()
                stats.record(outcome, latency)
                if outcome == "result" and on_result is not None:
                    on_result(stats)
                if outcome == "queue_full":
                    time.sleep(rng.uniform(0.2, 0.5))
        except BaseException as error:  # reported by the caller, with the client's number
            with stats.lock:
                stats.failures.append((index, repr(error)))
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join((seconds or 0) + 180)
    stats.hung = sum(thread.is_alive() for thread in threads)
    return stats


@pytest.fixture(scope="module")
def load_engine(fake_weights):
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    try:
        with running_engine(endpoint, fake_weights, home=home,
                            extra_args=("--client-timeout", "10", "--max-queue", str(MAX_QUEUE))) as engine:
            yield engine
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_sixteen_clients_at_once_complete_or_get_queue_full_and_only_their_own_events(load_engine):
    started = time.monotonic()
    rss_before = rss_kb(load_engine.process.pid)
    stats = run_load(load_engine.endpoint, seconds=LOAD_SECONDS)
    elapsed = time.monotonic() - started
    print("\nload: %d clients, %.1f s: %d results, %d queue_full, RSS %d -> %d KiB"
          % (CLIENTS, elapsed, stats.results, stats.refused, rss_before, rss_kb(load_engine.process.pid)))
    assert stats.hung == 0
    assert not stats.failures, stats.failures
    assert not stats.foreign_events, stats.foreign_events[:3]
    assert stats.results >= MAX_QUEUE + 1          # at least the first wave: the running job + a full queue
    assert stats.refused >= 1                      # 16 at once into a queue of MAX_QUEUE: some were refused
    assert load_engine.process.poll() is None
    # the engine forgot every client after its bye and has nothing left queued
    status_sock = LoadClient(load_engine.endpoint, 99, LoadStats())
    try:
        status_sock.send([p.pack_header(p.message(p.STATUS, req=1))])
        header, _ = status_sock.receive(time.monotonic() + 30)
        assert header["type"] == "status_report" and header["queued"] == 0 and header.get("running") is None, header
        assert header["clients"] == 1, header
    finally:
        status_sock.close()
