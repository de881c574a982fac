"""`python -m engine_server run | start | stop | status | logs`: the background engine's commands.

`register(subparsers)` adds them to the engine's CLI; each sets `func(args) -> exit code`.
`python -m engine_server.cli.daemon_commands ...` runs them without the rest of the CLI (what `start` uses).
"""

import argparse
import sys

from shared import protocol as p


def _common(parser: argparse.ArgumentParser, weights: bool) -> None:
    parser.add_argument("--endpoint", default=None,
                        help="ipc:///path/engine.sock or tcp://127.0.0.1:PORT (default: $NEURAL_STYLE_ENDPOINT, "
                             "then a per-user ipc socket)")
    if weights:
        parser.add_argument("--weights", default=None,
                            help="VGG-19 notop .h5 file (default: $NEURAL_STYLE_WEIGHTS, then the installer's)")


def _limits(args: argparse.Namespace) -> dict:
    limits = {}
    if getattr(args, "max_queued_mib", None) is not None:
        limits["max_queued_bytes"] = args.max_queued_mib << 20
    for name in ("max_queue", "max_pixels", "max_iterations", "client_timeout_s", "heartbeat_interval_s"):
        value = getattr(args, name, None)
        if value is not None:
            limits[name] = value
    return limits


def _run(args: argparse.Namespace) -> int:
    from ..daemon.lifecycle import DaemonError, run
    try:
        run(args.endpoint, args.weights, _limits(args), library_folder=args.library, quiet=args.quiet,
            curve_folder=args.curve_dir, force_curve=args.curve,
            job_memory_bytes=None if args.job_memory_mib is None else args.job_memory_mib << 20,
            precision=args.precision, idle_timeout=args.idle_timeout, gpu_memory_mib=args.gpu_memory_mib,
            nice=args.nice)
    except DaemonError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    return 0


def _start(args: argparse.Namespace) -> int:
    from ..daemon.lifecycle import DaemonError, start
    try:
        extra = ["--idle-timeout", "%g" % args.idle_timeout] if args.idle_timeout else []
        if args.nice != DEFAULT_NICE:
            extra += ["--nice", str(args.nice)]
        welcome = start(args.endpoint, args.weights, timeout=args.timeout, extra=extra or None)
    except DaemonError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    print("engine %s running (pid %s, device %s)" % (welcome.get("engine_version"), welcome.get("pid"),
                                                     welcome.get("device")))
    return 0


def _stop(args: argparse.Namespace) -> int:
    from ..daemon.lifecycle import DaemonError, stop
    try:
        pid = stop(args.endpoint, timeout=args.timeout)
    except DaemonError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    print("no engine was running" if pid is None else "engine stopped")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..daemon.lifecycle import status
    code, sentence = status(args.endpoint)
    print(sentence)
    return code


def _logs(args: argparse.Namespace) -> int:
    from ..logs import tail
    from shared.paths import log_path
    path = log_path()
    lines = tail(path, args.lines)
    print("the engine's log: %s" % path)
    if lines is None:
        print("(there is no log yet: no engine or command has run as this user)")
        return 0
    for line in lines:
        print(line)
    return 0


def _idle_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idle-timeout", type=float, default=0.0, metavar="SECONDS",
                        help="stop by itself after this many seconds without work (no jobs, no style library "
                             "calls); 0 = never (the default; an engine a plugin starts gets 600)")


DEFAULT_NICE = 10


def _niceness(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 19:
        raise argparse.ArgumentTypeError("expected 0 to 19, got %s" % text)
    return value


def _nice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nice", type=_niceness, default=DEFAULT_NICE, metavar="N",
                        help="run at a CPU priority N steps lower (0 to 19, default %d), so that the editor and "
                             "the desktop stay smooth while the engine computes; 0 keeps the caller's priority"
                             % DEFAULT_NICE)


def register(subparsers) -> None:
    run = subparsers.add_parser("run", help="run the engine in the foreground (logs also go to stderr)")
    _common(run, weights=True)
    defaults = p.DEFAULT_LIMITS
    run.add_argument("--max-queue", type=int, default=None, help="jobs that may wait (default %d)" % defaults["max_queue"])
    run.add_argument("--max-queued-mib", type=int, default=None,
                     help="MiB of pixels all waiting jobs may hold together (default %d)"
                     % (defaults["max_queued_bytes"] >> 20))
    run.add_argument("--max-pixels", type=int, default=None,
                     help="largest image in pixels (default %d)" % defaults["max_pixels"])
    run.add_argument("--max-iterations", type=int, default=None,
                     help="most iterations a job may ask for (default %d)" % defaults["max_iterations"])
    run.add_argument("--client-timeout", dest="client_timeout_s", type=float, default=None,
                     help="seconds of silence after which a client's jobs are cancelled (default %g)"
                     % defaults["client_timeout_s"])
    run.add_argument("--heartbeat-interval", dest="heartbeat_interval_s", type=float, default=None,
                     help="seconds between heartbeats (default %g)" % defaults["heartbeat_interval_s"])
    run.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                     help="what the convolutions compute in; auto: bfloat16 where the hardware has it natively "
                          "(AVX512-BF16/AMX CPUs, GPUs of compute capability 8+), else float32")
    run.add_argument("--job-memory-mib", type=int, default=None,
                     help="memory one job may use; larger images are worked on in tiles (default: half of "
                          "what the system has available when the job starts each scale)")
    run.add_argument("--gpu-memory-mib", type=int, default=None,
                     help="GPU memory the engine may take, per GPU (default: as it needs it, never all at once)")
    _idle_timeout(run)
    _nice(run)
    run.add_argument("--library", default=None, help="style library folder (default: the per-user one)")
    run.add_argument("--quiet", action="store_true", help="log to the log file only")
    run.add_argument("--curve-dir", default=None,
                     help="CurveZMQ keys: server.key_secret and authorized_clients/*.key (default: the per-user "
                          "config folder's curve/); needed for any endpoint that is not ipc or loopback")
    run.add_argument("--curve", action="store_true",
                     help="require CurveZMQ even on a loopback endpoint (e.g. behind an ssh tunnel)")
    run.set_defaults(func=_run)

    start = subparsers.add_parser("start", help="start the engine in the background (if it is not running)")
    _common(start, weights=True)
    start.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for it to answer")
    _idle_timeout(start)
    _nice(start)
    start.set_defaults(func=_start)

    stop = subparsers.add_parser("stop", help="stop the background engine")
    _common(stop, weights=False)
    stop.add_argument("--timeout", type=float, default=30.0, help="seconds before it is killed")
    stop.set_defaults(func=_stop)

    status = subparsers.add_parser("status", help="exit 0 if an engine answers, 1 if not, with a sentence")
    _common(status, weights=False)
    status.set_defaults(func=_status)

    logs = subparsers.add_parser("logs", help="where the engine's log is, and its last lines")
    logs.add_argument("--lines", type=int, default=40, help="how many of the last lines (default 40)")
    logs.set_defaults(func=_logs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine_server")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
