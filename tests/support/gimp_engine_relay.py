"""Lets GIMP inside the Debian 13 root auto-start a real engine on the host, as engine.json does on
an artist's machine.

On an artist's machine the installer writes engine.json with the command that runs the engine;
the plug-in's client runs `COMMAND start --endpoint E [--weights W]` when no engine answers. In CI
GIMP 3 lives in a Debian 13 root without TensorFlow, so the command written there is this file run
by the root's python3: it hands its arguments over a unix socket (in the workspace, bind-mounted
into the root) to an EngineRelay in the pytest process, which runs `python -m engine_server start
...` on the host and sends back its output and exit code, which this script then prints and
exits with. So the client sees exactly what the engine's own start command says and does.

Standard library only: the root side runs this file with GIMP's Python.
"""

import json
import os
import socket
import subprocess
import sys
import threading

RELAY_TIMEOUT_S = 240.0


class EngineRelay:
    """Host side: serves `start` requests (and nothing else) from the relay script; a context manager."""

    def __init__(self, folder, env, repo):
        self.socket_path = os.path.join(folder, "engine-relay.sock")
        self.script = os.path.join(folder, "engine_relay.py")
        with open(os.path.abspath(__file__), encoding="utf-8") as source, \
                open(self.script, "w", encoding="utf-8") as target:
            target.write(source.read())
        self.env, self.repo = env, repo
        self.requests = []            # the argument lists it ran, for the tests to look at
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        self._server.listen(4)
        self._server.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="engine-relay", daemon=True)
        self._thread.start()

    def command(self):
        """What engine.json's "command" holds inside the root."""
        return ["python3", self.script, self.socket_path]

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with connection:
                connection.settimeout(RELAY_TIMEOUT_S)
                try:
                    reply = self._handle(connection)
                except Exception as error:   # the script then says so and fails
                    reply = {"code": 70, "output": "relay error: %s\n" % error}
                try:
                    connection.sendall(json.dumps(reply).encode("utf-8"))
                except OSError:
                    pass    # the client stops waiting for its launcher once the engine answers

    def _handle(self, connection):
        data = b""
        while not data.endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
        argv = json.loads(data.decode("utf-8"))
        if not (isinstance(argv, list) and argv[:1] == ["start"] and all(isinstance(a, str) for a in argv)):
            raise ValueError("only `start ...` is relayed, got %r" % (argv,))
        self.requests.append(argv)
        done = subprocess.run([sys.executable, "-m", "engine_server"] + argv, cwd=self.repo, env=self.env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=RELAY_TIMEOUT_S)
        return {"code": done.returncode, "output": done.stdout.decode("utf-8", "replace")}

    def close(self):
        self._stop.set()
        self._server.close()
        self._thread.join(5)
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv):
    """Root side: `engine_relay.py SOCKET start --endpoint E [--weights W]`."""
    relay = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    relay.connect(argv[0])
    relay.sendall(json.dumps(argv[1:]).encode("utf-8") + b"\n")
    data = b""
    while True:
        chunk = relay.recv(65536)
        if not chunk:
            break
        data += chunk
    reply = json.loads(data.decode("utf-8"))
    sys.stdout.write(reply["output"])
    sys.stdout.flush()
    return int(reply["code"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
