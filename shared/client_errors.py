"""What can go wrong between a client and the engine: every failure is one of these, with a
readable str() (the plugins show it to the artist)."""

from typing import Optional


class ClientError(Exception):
    """Base of every error the client raises; str() is one readable sentence."""


class EngineUnavailable(ClientError):
    """No engine answers and none could be started within the timeout."""


class EngineRefused(ClientError):
    """The engine refused this client's CurveZMQ key (told apart from silence by ZeroMQ's handshake events)."""


class ProtocolMismatch(ClientError):
    """The engine speaks another protocol version."""


class EngineLost(ClientError):
    """The engine stopped answering (no heartbeat within a bounded time)."""


class JobFailed(ClientError):
    """The engine answered with an `error`: `.code`, `.field` (or None), `.message`."""

    def __init__(self, code: str, message: str, field: Optional[str] = None, header: Optional[dict] = None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message
        self.header = header or {}


class EngineOutdated(ClientError):
    """The engine running now is older than this client: it does not know `.option`, which is set to
    something other than its default, or ("previous_frame") frames of an animation (docs/protocol.md,
    "Options an engine does not know")."""

    def __init__(self, message: str, option: str):
        super().__init__(message)
        self.option = option
