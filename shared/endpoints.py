"""Where the engine listens: explicit value, then $NEURAL_STYLE_ENDPOINT, then the per-user default.

The default is an ipc:// socket in a private (0700) runtime folder; the engine makes the socket
file 0600. tcp://127.0.0.1:PORT is the option where ipc is unavailable. Any other address is
"remote" and needs CurveZMQ keys (see curve_paths()).
Standard library only (the zmq import is lazy), Python 3.9+.
"""

import hashlib
import ipaddress
import os
import sys
from typing import Optional, Tuple

from . import paths

SOCKET_NAME = "engine.sock"
DEFAULT_TCP_PORT = 5791
IPC_PATH_MAX = 100       # sockaddr_un.sun_path is 104-108 bytes depending on the OS


class EndpointError(ValueError):
    """An endpoint string the engine and clients cannot use; the message says why."""


def ipc_supported() -> bool:
    if sys.platform == "win32":
        return False
    try:
        import zmq
        return bool(zmq.has("ipc"))
    except Exception:
        return True


def default_endpoint() -> str:
    if ipc_supported():
        return "ipc://" + os.path.join(paths.runtime_dir(), SOCKET_NAME)
    return "tcp://127.0.0.1:%d" % DEFAULT_TCP_PORT


def resolve(explicit: Optional[str] = None) -> str:
    """The endpoint to use: explicit, then $NEURAL_STYLE_ENDPOINT, then the per-user default."""
    endpoint = explicit or os.environ.get(paths.ENDPOINT_ENV) or default_endpoint()
    parse(endpoint)
    return endpoint


def parse(endpoint: str) -> Tuple[str, str, Optional[int]]:
    """-> ("ipc", path, None) or ("tcp", host, port); raises EndpointError with a sentence."""
    if not isinstance(endpoint, str):
        raise EndpointError("the engine endpoint must be a string like ipc:///path or tcp://127.0.0.1:5791")
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://"):]
        if not path.startswith("/"):
            raise EndpointError("the ipc endpoint %r needs an absolute path (ipc:///run/user/1000/x.sock)" % endpoint)
        if len(path.encode("utf-8")) > IPC_PATH_MAX:
            raise EndpointError("the ipc socket path %r is longer than %d bytes, which sockets do not allow; "
                                "choose a shorter folder" % (path, IPC_PATH_MAX))
        return "ipc", path, None
    if endpoint.startswith("tcp://"):
        rest = endpoint[len("tcp://"):]
        host, sep, port_text = rest.rpartition(":")
        if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise EndpointError("the tcp endpoint %r needs a host and a port, like tcp://127.0.0.1:5791" % endpoint)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not host:
            raise EndpointError("the tcp endpoint %r has no host" % endpoint)
        return "tcp", host, int(port_text)
    raise EndpointError("unsupported engine endpoint %r: use ipc:///path/engine.sock or tcp://127.0.0.1:PORT"
                        % endpoint)


def is_loopback(endpoint: str) -> bool:
    """True for ipc sockets and tcp on 127.0.0.0/8, ::1 or localhost; False for anything else (incl. *)."""
    kind, host, _ = parse(endpoint)
    if kind == "ipc":
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False    # "*", an interface name or a host name: treat as reachable from outside


def ipc_path(endpoint: str) -> Optional[str]:
    kind, path, _ = parse(endpoint)
    return path if kind == "ipc" else None


def endpoint_key(endpoint: str) -> str:
    """A short file-name-safe key for per-endpoint files (pidfile, lock)."""
    return hashlib.sha1(endpoint.encode("utf-8")).hexdigest()[:12]


def curve_dir() -> str:
    """Keys for a remote (non-loopback) engine, in pyzmq's zmq.auth certificate format:
    server.key / server.key_secret, client.key / client.key_secret, authorized_clients/*.key."""
    return os.path.join(paths.config_dir(), "curve")


def curve_paths(folder: Optional[str] = None) -> dict:
    folder = folder or curve_dir()
    return {
        "server_public": os.path.join(folder, "server.key"),
        "server_secret": os.path.join(folder, "server.key_secret"),
        "client_public": os.path.join(folder, "client.key"),
        "client_secret": os.path.join(folder, "client.key_secret"),
        "authorized": os.path.join(folder, "authorized_clients"),
    }
