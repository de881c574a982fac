"""The engine's log file (shared.paths.log_path()), set up once for every command and the daemon.

Everything goes to the file; only warnings reach the terminal, and only when asked. TensorFlow's
C++ start-up chatter is written to file descriptor 2, so a process started as `python -m
engine_server` sends that descriptor to the log too (redirect_native_stderr).
"""

import logging
import logging.handlers
import os
import sys

from shared import paths

LOG_BYTES = 2 * 2**20
LOG_BACKUPS = 3
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def _ours(handler) -> bool:
    return getattr(handler, "_neural_style", False)


def setup_logging(to_stderr: bool = False, level: str = "INFO") -> str:
    """Log to the rotating per-user log file (and warnings to stderr if `to_stderr`); returns its path.
    Calling it again replaces the handlers it added before. A folder that cannot be written must not
    stop the work: the log is then dropped."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")     # TensorFlow's C++ chatter, if read in time
    root = logging.getLogger()
    for handler in [h for h in root.handlers if _ours(h)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    path = paths.log_path()
    try:
        paths.ensure_private_dir(os.path.dirname(path))
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                                                       encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handlers = [handler]
    if to_stderr:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        console.setLevel(logging.WARNING)
        console.addFilter(lambda record: not getattr(record, "file_only", False))
        handlers.append(console)
    for handler in handlers:
        handler._neural_style = True
        root.addHandler(handler)
    logging.captureWarnings(True)
    return path


NATIVE_TAG = "[native] "
# Tags every line of file descriptor 2 and appends it to the log. A process of its own, so that what
# TensorFlow writes just before it aborts the engine is still read to the end and kept.
TAGGER = ("import signal, sys\n"
          "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
          "for line in sys.stdin.buffer:\n"
          "    sys.stdout.buffer.write(b%r + line)\n"
          "    sys.stdout.buffer.flush()\n" % NATIVE_TAG.encode())


def redirect_native_stderr() -> None:
    """Send file descriptor 2 (TensorFlow's C++ logging, which ignores a TF_CPP_MIN_LOG_LEVEL set
    after start-up, and its start-up notices) to the log file, each line tagged "[native] "; Python's
    sys.stderr keeps writing to the real terminal. Only for a process started as `python -m
    engine_server` (never inside tests)."""
    import subprocess
    try:
        path = paths.log_path()
        paths.ensure_private_dir(os.path.dirname(path))
        log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError:
        return
    try:
        tagger = subprocess.Popen([sys.executable, "-u", "-c", TAGGER], stdin=subprocess.PIPE, stdout=log_fd,
                                  stderr=subprocess.DEVNULL, close_fds=True)
    except OSError:
        tagger = None
    sys.stderr.flush()
    terminal = os.dup(2)
    os.dup2(tagger.stdin.fileno() if tagger is not None else log_fd, 2)
    os.close(log_fd)
    if tagger is not None:
        tagger.stdin.close()          # fd 2 is now the pipe's only writer: the tagger ends with this process
        tagger.returncode = 0         # never waited for (it outlives nothing but this process)
    sys.stderr = os.fdopen(terminal, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                           errors="backslashreplace")


def tail(path: str, lines: int = 40) -> "list | None":
    """The last `lines` lines of the log at `path` (read from its end), or None if there is none."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max(1, lines) * 400))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return text.splitlines()[-lines:] if lines > 0 else []
