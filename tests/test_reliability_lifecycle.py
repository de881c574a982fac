"""The engine's life cycle as artists meet it (issue 15), against real engine processes: a crashed or
stopped engine is noticed and the first request after it succeeds, an idle engine exits by itself,
a busy caller keeps its job, a dead client frees the engine at once, cancel lands inside a long
tiled evaluation, shutdown ends the running job with a message, `stop` never signals a process for
an engine that is not this machine's, and `logs` shows the log."""

import os
import signal
import subprocess
import sys
import threading
import time

import msgpack
import zmq

from shared import protocol as p
from shared.client import Client
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import REPO, engine_env, running_engine, short_temp_dir

IMG = Pixels(32, 32, 3, "u8", bytes(range(256)) * 12)
STYLE = StyleRef.pixels(Pixels(16, 16, 3, "u8", bytes(range(256)) * 3), name="ramp")
LONG = {"iterations": 10000, "preview_interval_s": 0, "optimizer": "adam"}   # L-BFGS may stop converged
HANG_S = 120.0        # bounds that only catch a hang


def use_engine_env(monkeypatch, home):
    env = engine_env(home)
    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "PYTHONPATH"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv("NEURAL_STYLE_ENGINE", raising=False)
    return env


def wait_for(predicate, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")


def test_a_crashed_or_idle_engine_is_noticed_and_the_first_request_after_it_starts_a_new_one(fake_weights,
                                                                                              monkeypatch):
    home = short_temp_dir()
    use_engine_env(monkeypatch, home)
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    command = [sys.executable, "-m", "engine_server"]
    pids = []
    try:
        client = Client(endpoint, engine_command=command, weights=fake_weights, start_timeout=HANG_S, idle_timeout=2)
        assert not client.engine_running(), "engine_running() must not start an engine"
        assert not os.path.exists(endpoint[len("ipc://"):])
        assert client.submit(IMG, [STYLE], {"iterations": 2}).wait(HANG_S).type == "result"
        pid = client.welcome["pid"]
        pids.append(pid)
        args = cmdline(pid)
        assert args[args.index(b"--idle-timeout") + 1] == b"2", args      # a plugin's engine does not live forever
        assert client.engine_running()
        # kill -9: engine_running() says so within a few seconds, and the very next submit succeeds.
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        assert wait_for(lambda: not client.engine_running(), 10.0)
        noticed = time.monotonic() - killed
        assert client.submit(IMG, [STYLE], {"iterations": 2}).wait(HANG_S).type == "result"
        second = client.welcome["pid"]
        pids.append(second)
        assert second != pid
        # Idle for --idle-timeout (2 s): it exits by itself; the next request starts it again.
        done = time.monotonic()
        assert wait_for(lambda: process_gone(second), 30.0), "the idle engine did not exit"
        idle_exit = time.monotonic() - done
        assert wait_for(lambda: not client.engine_running(), 10.0)
        job = client.submit(IMG, [STYLE], {"iterations": 2})
        pids.append(client.welcome["pid"])
        assert job.wait(HANG_S).type == "result"
        client.close()
        print("\nkill -9 noticed by engine_running() after %.2f s; idle engine (2 s) exited %.2f s after its "
              "last job" % (noticed, idle_exit))
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_run_without_idle_timeout_keeps_running(fake_weights):
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    with running_engine(endpoint, fake_weights, home=home) as engine:
        with Client(endpoint, autostart=False) as client:
            assert client.submit(IMG, [STYLE], {"iterations": 2}).wait(HANG_S).type == "result"
        time.sleep(3.0)
        assert engine.process.poll() is None


def test_a_caller_busy_for_longer_than_the_client_timeout_keeps_its_job(engine):
    # The engine's client timeout is 4 s; this caller does not touch the client for 9 s.
    with Client(engine.endpoint, autostart=False) as client:
        job = client.submit(IMG, [STYLE], LONG)
        time.sleep(9.0)
        event = job.poll(30)
        assert event is not None and event.type == "progress", event and event.header
        job.cancel()
        assert job.wait(HANG_S).type == "cancelled"


def test_a_killed_client_frees_the_engine_within_5_s(fake_weights):
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    with running_engine(endpoint, fake_weights, home=home) as engine:      # the default client timeout
        _killed_client_frees_the_engine(engine)


def _killed_client_frees_the_engine(engine):
    script = (
        "import sys\n"
        "from shared.client import Client\n"
        "from shared.protocol import Pixels, StyleRef\n"
        "c = Client(sys.argv[1], autostart=False)\n"
        "img = Pixels(32, 32, 3, 'u8', bytes(range(256)) * 12)\n"
        "style = Pixels(16, 16, 3, 'u8', bytes(range(255, -1, -1)) * 3)\n"
        "job = c.submit(img, [StyleRef.pixels(style)], {'iterations': 10000, 'preview_interval_s': 0, 'optimizer': 'adam'})\n"
        "for event in job.events():\n"
        "    print(event.type, flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", script, engine.endpoint], cwd=REPO, stdout=subprocess.PIPE,
                             text=True)
    with Client(engine.endpoint, autostart=False) as client:
        try:
            assert child.stdout.readline().strip() == "progress"
            assert client.status()["running"]["mine"] is False
        finally:
            child.kill()
            killed = time.monotonic()
            child.wait(10)
        assert wait_for(lambda: "running" not in client.status(), HANG_S)
        freed = time.monotonic() - killed
        with open(os.path.join(engine.home, "state", "neural-style", "engine.log"), encoding="utf-8") as f:
            assert "job 1 cancelled (client_gone)" in f.read()
        print("\na killed client's job was cancelled %.2f s after the kill" % freed)
        assert freed < 5.0


def test_cancel_lands_within_2_s_inside_a_long_tiled_evaluation(fake_weights):
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    side = 1224                                           # 1.5 MP in 1000 MiB: passes go in tiles
    big = Pixels(side, side, 3, "u8", bytes(range(256)) * (side * side * 3 // 256) + bytes(side * side * 3 % 256))
    with running_engine(endpoint, fake_weights, home=home, extra_args=("--job-memory-mib", "1000")) as engine:
        log_path = os.path.join(home, "state", "neural-style", "engine.log")
        with Client(endpoint, autostart=False) as client:
            job = client.submit(big, [STYLE], {"iterations": 50, "max_size": side, "scales": 1,
                                               "preview_interval_s": 0})
            assert wait_for(lambda: "passes in tiles" in open(log_path, encoding="utf-8").read(), HANG_S), \
                engine.log_tail()
            time.sleep(3.0)       # well inside the first evaluation (one takes far longer on this CPU)
            assert job.poll(0) is None, "the first evaluation ended already; make the image larger"
            asked = time.monotonic()
            job.cancel()
            final = job.wait(HANG_S)
            landed = time.monotonic() - asked
            assert final.type == "cancelled", final.header
            # Shutdown inside a tiled evaluation: the worker stops at its next tile and is joined,
            # and the running job's client gets its final message.
            job = client.submit(big, [STYLE], {"iterations": 50, "max_size": side, "scales": 1,
                                               "preview_interval_s": 0})
            assert wait_for(lambda: open(log_path, encoding="utf-8").read().count("passes in tiles") >= 2, HANG_S)
            time.sleep(3.0)
            with Client(endpoint, autostart=False) as admin:
                asked = time.monotonic()
                admin.shutdown()
            final = job.wait(HANG_S)
            stopped = time.monotonic() - asked
            assert final.type == "error" and final.header["code"] == p.E_SHUTTING_DOWN, final.header
            engine.process.wait(HANG_S)
        print("\ncancel inside a tiled evaluation landed after %.2f s; shutdown's final message after %.2f s"
              % (landed, stopped))
        assert landed < 2.0


def fake_remote_engine(pid_to_claim):
    """A ROUTER on loopback tcp that answers like an engine on another machine: its welcome names
    `pid_to_claim`, and it refuses shutdown (not local to it)."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            if not router.poll(100):
                continue
            identity, frame = router.recv_multipart()[:2]
            header = msgpack.unpackb(frame, raw=False)
            if header.get("type") == p.HELLO:
                answer = p.message(p.WELCOME, req=header.get("req"), protocol_version=p.PROTOCOL_VERSION,
                                   engine_version="remote", pid=pid_to_claim, limits=p.DEFAULT_LIMITS)
            elif header.get("type") == p.SHUTDOWN:
                answer = p.error_message(p.E_NOT_ALLOWED, "shutdown is only accepted on a local endpoint",
                                         req=header.get("req"))
            else:
                continue
            router.send_multipart([identity, p.pack_header(answer)])
        router.close(linger=0)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return "tcp://127.0.0.1:%d" % port, stop, thread


def test_stop_never_signals_a_local_process_for_an_engine_elsewhere(tmp_path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    endpoint, stop, thread = fake_remote_engine(bystander.pid)
    try:
        env = engine_env(str(tmp_path))
        result = subprocess.run([sys.executable, "-m", "engine_server", "stop", "--endpoint", endpoint,
                                 "--timeout", "3"], cwd=REPO, env=env, capture_output=True, text=True, timeout=HANG_S)
        time.sleep(0.5)
        assert bystander.poll() is None, "stop signalled pid %d, which is not an engine" % bystander.pid
        assert result.returncode == 2 and "refused to stop" in result.stderr, (result.stdout, result.stderr)
    finally:
        stop.set()
        thread.join(5)
        bystander.kill()
        bystander.wait(10)


def test_logs_shows_where_the_log_is_and_its_last_lines(engine):
    with Client(engine.endpoint, autostart=False) as client:
        assert client.submit(IMG, [STYLE], {"iterations": 2}).wait(HANG_S).type == "result"
    result = subprocess.run([sys.executable, "-m", "engine_server", "logs", "--lines", "15"], cwd=REPO,
                            env=engine.env, capture_output=True, text=True, timeout=HANG_S)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    log_path = os.path.join(engine.home, "state", "neural-style", "engine.log")
    assert lines[0] == "the engine's log: %s" % log_path
    assert 1 < len(lines) <= 16 and any("finished" in line for line in lines[1:]), result.stdout
    with open(log_path, encoding="utf-8") as f:
        text = f.read()
    # Every line is one of ours or tagged as TensorFlow's native output.
    untagged = [line for line in text.splitlines() if line.strip() and not _ours_or_tagged(line)]
    assert not untagged, untagged[:5]


def _ours_or_tagged(line):
    import re
    return bool(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ [A-Z]+ ", line) or line.startswith("[native] ")
                or line.startswith((" ", "\t", "Traceback")))
