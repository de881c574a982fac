"""Daemon/protocol benchmark (not a test). Prints, in one run on this machine:

1. handshake round trip (hello -> welcome on an open socket) and a whole connect (new Client + hello);
2. a 4096x4096 RGBA 16-bit layer through the engine (1 iteration at max_size 64, so the optimizer
   costs next to nothing) against the same decode -> stylize -> encode in-process: wall time and
   peak memory of the client, the engine and the in-process baseline;
3. time from submit to the first preview on a warm engine (256x256 and 512x512 RGBA 8-bit).

    python benchmarks/bench_protocol.py [--weights VGG19.h5] [--size 4096] [--rounds 200]

Without --weights it writes the seeded random test weights (same layout and cost).
The client side of this script never imports NumPy's heavy users or TensorFlow, like a plugin.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def proc_memory_mb(pid, key):
    from tests.support.proc_memory import peak_rss_kb, rss_kb

    return (rss_kb if key == "VmRSS" else peak_rss_kb)(pid) / 1024.0


def layer(size, seed=0):
    """A size x size RGBA u16 layer: a smooth gradient plus noise (bytes, no NumPy needed by the client)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    rgba = np.stack([x, y, (x + y) / 2, np.ones_like(x)], axis=2) * 60000
    rgba += rng.integers(0, 5000, rgba.shape)
    return rgba.astype("<u2").tobytes()


OPTIONS = {"iterations": 1, "max_size": 64, "preview_interval_s": 0.0}


def in_process(weights, size):
    """The baseline: what the engine does for that job, without the protocol (run in a subprocess)."""
    from engine_server.daemon import pixels
    from engine_server.core.model import VGG19Features
    from engine_server.core.stylize import StyleInput, stylize
    from shared.options import validate_options
    from shared.protocol import Pixels

    model = VGG19Features.load(weights)
    style = Pixels(64, 64, 3, "u8", bytes(range(256)) * 48)
    options = validate_options({k: v for k, v in OPTIONS.items() if k != "preview_interval_s"})
    warm = Pixels(64, 64, 4, "u16", layer(64))
    stylize(model, pixels.decode(warm)[0], [StyleInput(pixels.decode(style)[0])], options)
    data = (bytes(range(256)) * (size * size * 8 // 256 + 1))[:size * size * 8]
    before = proc_memory_mb(os.getpid(), "VmRSS")
    started = time.perf_counter()
    source = Pixels(size, size, 4, "u16", data)
    rgb, alpha = pixels.decode(source)
    result = stylize(model, rgb, [StyleInput(pixels.decode(style)[0])], options)
    out = pixels.encode(result, alpha, source)
    elapsed = time.perf_counter() - started
    assert len(out.data) == len(data)
    print(json.dumps({"seconds": elapsed, "rss_before_mb": before, "peak_mb": proc_memory_mb(os.getpid(), "VmHWM")}))


def client_big(endpoint, size):
    """One big job from a fresh client process: wall times and the client's own memory."""
    from shared.client import Client
    from shared.protocol import Pixels, StyleRef

    client = Client(endpoint, autostart=False)
    client.connect()
    style = StyleRef.pixels(Pixels(64, 64, 3, "u8", bytes(range(256)) * 48))
    before = proc_memory_mb(os.getpid(), "VmRSS")
    data = (bytes(range(256)) * (size * size * 8 // 256 + 1))[:size * size * 8]
    started = time.perf_counter()
    job = client.submit(Pixels(size, size, 4, "u16", data), [style], OPTIONS)
    accepted = time.perf_counter() - started
    final = job.wait(1200)
    total = time.perf_counter() - started
    assert final.type == "result" and len(final.pixels.data) == len(data), final.header
    client.close()
    print(json.dumps({
        "size": "%dx%d RGBA u16 (%.0f MiB)" % (size, size, len(data) / 2**20),
        "submit_to_accepted_s": accepted, "submit_to_result_s": total,
        "engine_work_s": final.header.get("elapsed_s"),
        "client_rss_before_mb": before, "client_peak_mb": proc_memory_mb(os.getpid(), "VmHWM"),
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client-big", metavar="ENDPOINT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        return in_process(args.weights, args.size)
    if args.client_big:
        return client_big(args.client_big, args.size)

    import zmq
    import msgpack
    from shared.client import Client
    from shared.protocol import Pixels, StyleRef
    from tests.support.engine_fixture import running_engine, short_temp_dir

    home = short_temp_dir("nsb-")
    weights = args.weights
    if not weights:
        from tests.support.fake_vgg19 import write_fake_vgg19_weights
        weights = str(write_fake_vgg19_weights(os.path.join(home, "vgg19.h5"), seed=0))
    endpoint = "ipc://" + os.path.join(home, "engine.sock")
    report = {}
    with running_engine(endpoint, weights, home=home) as engine:
        # 1. handshake
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        hello = msgpack.packb({"v": 1, "type": "hello", "req": 1})
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            sock.send(hello)
            sock.recv_multipart()
            times.append(time.perf_counter() - started)
        sock.close()
        report["hello_round_trip_ms"] = {"median": statistics.median(times) * 1e3,
                                         "p95": sorted(times)[int(len(times) * 0.95)] * 1e3}
        connects = []
        for _ in range(20):
            started = time.perf_counter()
            client = Client(endpoint, autostart=False)
            client.connect()
            connects.append(time.perf_counter() - started)
            client.close()
        report["connect_ms_median"] = statistics.median(connects) * 1e3

        client = Client(endpoint, autostart=False)
        style = StyleRef.pixels(Pixels(64, 64, 3, "u8", bytes(range(256)) * 48))
        warm = Pixels(64, 64, 4, "u16", layer(64))
        client.submit(warm, [style], OPTIONS).wait(300)

        # 3. submit -> first preview (warm engine), at 256 and at 512 px (issue 8's target is 512)
        for side in (256, 512):
            firsts = []
            square = Pixels(side, side, 4, "u8", bytes(range(256)) * (side * side // 64))
            for _ in range(3):
                started = time.perf_counter()
                job = client.submit(square, [style], {"iterations": 20, "max_size": side,
                                                      "preview_interval_s": 2.0})
                accepted = time.perf_counter() - started
                for event in job.events():
                    if event.pixels is not None:
                        firsts.append((accepted, time.perf_counter() - started))
                        job.cancel()
                        break
                if not job.done:
                    job.wait(120)
            report["submit_to_accepted_ms_%d" % side] = statistics.median(a for a, _ in firsts) * 1e3
            report["submit_to_first_preview_s_%d" % side] = statistics.median(f for _, f in firsts)

        client.close()
        # 2. the big layer, from a client process that holds nothing else (as a plugin would)
        engine_idle = proc_memory_mb(engine.process.pid, "VmRSS")
        run = subprocess.run([sys.executable, os.path.abspath(__file__), "--client-big", endpoint,
                              "--size", str(args.size)], capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr[-2000:], file=sys.stderr)
        else:
            report["big_layer"] = json.loads(run.stdout.strip().splitlines()[-1])
            report["big_layer"]["engine_idle_rss_mb"] = engine_idle
            report["big_layer"]["engine_peak_rss_mb"] = proc_memory_mb(engine.process.pid, "VmHWM")
    run = subprocess.run([sys.executable, os.path.abspath(__file__), "--in-process", "--weights", weights,
                          "--size", str(args.size)], capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr[-2000:], file=sys.stderr)
    else:
        report["in_process"] = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
