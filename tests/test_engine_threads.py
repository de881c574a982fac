"""The engine's threads beside an editor: numpy's BLAS starts no worker threads of its own in the engine
(they spun after every call, taking CPU from TensorFlow and from the editor), and an engine daemon runs
at a lower CPU priority (--nice) than the editor, every one of its threads.

Measured in docs/benchmarks.md ("numpy's BLAS threads", "Krita's event loop during a job")."""

import glob
import os
import subprocess
import sys

import pytest

from shared.client import Client
from shared.protocol import Pixels, StyleRef
from tests.support.engine_fixture import REPO, running_engine, short_temp_dir

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS", "GOTO_NUM_THREADS")


def threads_after(imports, **variables):
    """How many threads a fresh Python has after `imports` (no BLAS variable set but `variables`)."""
    env = {key: value for key, value in os.environ.items() if key not in BLAS_VARIABLES}
    env.update(variables)
    code = "%s; import os; print(len(os.listdir('/proc/self/task')))" % imports
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def test_numpy_starts_no_blas_threads_in_the_engine():
    assert os.cpu_count() > 1, "numpy starts one BLAS thread per core: this needs more than one to mean anything"
    assert threads_after("import numpy") > 1, "numpy alone no longer starts BLAS threads: the control is void"
    assert threads_after("import engine_server, numpy") == 1


def test_a_blas_thread_count_the_user_chose_is_kept():
    assert threads_after("import engine_server, numpy", OPENBLAS_NUM_THREADS="2") == 2


def niceness_of_threads(pid):
    """{thread id: nice value} of a running process (field 19 of /proc/PID/task/TID/stat)."""
    found = {}
    for stat in glob.glob("/proc/%d/task/*/stat" % pid):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue     # a thread that ended meanwhile
        found[int(stat.split("/")[-2])] = int(fields[16])
    return found


def run_a_job(endpoint):
    """One tiny job, so that TensorFlow has started all its threads."""
    image = Pixels(48, 48, 3, "u8", bytes(range(48)) * 144)
    with Client(endpoint, autostart=False) as client:
        outcome = client.submit(image, [StyleRef.pixels(image)], {"iterations": 2, "max_size": 48}).wait(300)
    assert outcome.type == "result", outcome.header


@pytest.mark.parametrize("extra_args, lowered_by", [((), 10), (("--nice", "0"), 0)], ids=["default", "nice-0"])
def test_every_thread_of_the_engine_runs_at_the_priority_asked(fake_weights, extra_args, lowered_by):
    """By default 10 steps below the editor's priority (the one who started it: here, the tests');
    --nice 0 keeps it."""
    home = short_temp_dir()
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    own = os.nice(0)
    with running_engine(endpoint, fake_weights, home=home, extra_args=extra_args) as engine:
        run_a_job(endpoint)
        niceness = niceness_of_threads(engine.process.pid)
    assert len(niceness) > 3, niceness      # the main thread, the I/O loop, the worker, TensorFlow's pools
    assert set(niceness.values()) == {min(19, own + lowered_by)}, niceness
