"""Output: every step is printed; the details go to the log file as well. Also the two ways to run a
command (`run`: logged and echoed; `quiet`: a short probe) and the one error the user sees."""

import datetime
import shlex
import subprocess
import sys
import time

from installing.project import VERSION


class InstallError(Exception):
    """A problem the user can act on; main() prints it as one message, never a traceback."""


class Output:
    def __init__(self):
        self.log_file = None
        self.step_number = 0
        self.summary = []          # (what, where) lines for the final summary
        self.actions = []          # things the user still has to do

    def open_log(self, path):
        self.log_file = open(path, "a", encoding="utf-8")
        self.log("==== installer %s, %s, %s" % (VERSION, datetime.datetime.now().isoformat(timespec="seconds"),
                                                 " ".join(sys.argv[1:])))

    def log(self, text):
        if self.log_file:
            self.log_file.write(text.rstrip("\n") + "\n")
            self.log_file.flush()

    def step(self, title):
        self.step_number += 1
        self.say("\n[%d] %s" % (self.step_number, title))

    def say(self, text=""):
        print(text, flush=True)
        self.log(text)

    def detail(self, text):
        self.say("    " + text)

    def warn(self, text):
        self.say("    WARNING: " + text)

    def loud(self, lines):
        bar = "!" * 78
        self.say(bar)
        for line in lines:
            self.say("!!  " + line)
        self.say(bar)

    def remember(self, what, where):
        self.summary.append((what, where))

    def todo(self, text):
        self.actions.append(text)


out = Output()


def run(command, check=True, capture=False, env=None, timeout=None, echo=True):
    """Run a command; its output goes to the log (and, with echo, to the console, indented)."""
    out.log("$ " + " ".join(shlex.quote(str(c)) for c in command))
    try:
        process = subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=env, universal_newlines=True, errors="replace")
    except OSError as error:
        raise InstallError("could not run %s: %s" % (command[0], error.strerror or error))
    lines = []
    started = time.monotonic()
    for line in process.stdout:
        lines.append(line)
        out.log("  | " + line)
        if echo and not capture:
            print("      | " + line.rstrip("\n"), flush=True)
        if timeout and time.monotonic() - started > timeout:
            process.kill()
            break
    process.wait()
    text = "".join(lines)
    if check and process.returncode != 0:
        tail = "".join(lines[-15:]).rstrip()
        raise InstallError("%s failed (exit %s):\n%s" % (" ".join(str(c) for c in command[:4]),
                                                          process.returncode, tail))
    return process.returncode, text


def quiet(command, timeout=60, env=None, cwd=None):
    """(exit code, output) of a short probe; (None, reason) when it cannot run or times out."""
    try:
        done = subprocess.run([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, errors="replace", timeout=timeout, env=env, cwd=cwd)
        return done.returncode, done.stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, str(error)
