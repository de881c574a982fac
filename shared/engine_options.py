"""Options the engine does not know: a plugin newer than the engine still running (docs/protocol.md,
"Options an engine does not know").

The plugins send every option of the table, and an engine from before an option refuses the whole job
for it. Without the feature that engine behaves as the option's default, so an option it does not know
is left out when it holds its default; set to anything else it is refused here (EngineOutdated: the
engine must be restarted). The welcome lists the options an engine takes; an engine from before that
list says it by refusing (`invalid_field`, field `options.X`, "unknown option"): X is then left out,
remembered for the connection, and the submit sent once more. Standard library only.
"""

from typing import Any, Callable, Dict, Optional, Set

from . import protocol as p
from .client_errors import EngineOutdated, JobFailed
from .options import OptionError, validate_option


def is_default(name: str, value: Any) -> bool:
    """Is `value` the table's default of option `name` (100 and 100.0 alike; an invalid value is not)?"""
    option = p.ALL_OPTIONS_BY_NAME[name]
    try:
        return validate_option(option, value) == validate_option(option, option.default)
    except OptionError:
        return False


class EngineOptions:
    """The options the connected engine takes; one per Client, learned again for every new connection."""

    def __init__(self) -> None:
        self._welcome: Optional[Dict[str, Any]] = None
        self._unknown: Set[str] = set()     # refused by this engine, which sends no list

    def submit(self, client: Any, options: Optional[Dict[str, Any]], frames: bool,
               send: Callable[[Dict[str, Any]], Dict[str, Any]]) -> Dict[str, Any]:
        """send(the options this engine takes) -> its answer; EngineOutdated for a non-default option it
        does not know, or for a frame k > 0 (`frames`) to an engine without the capability."""
        options = dict(options or {})
        dropped: Set[str] = set()
        while True:
            welcome = client.connect()
            if frames and "frames" not in (welcome.get("capabilities") or ()):
                raise _outdated(client, "previous_frame", None)
            sent = self._fit(client, welcome, options)
            try:
                return send(sent)
            except JobFailed as refused:
                name = _unknown_option(refused, sent)
                if name is None or name in dropped:
                    raise
                self._learn(client.welcome, name)
                if not is_default(name, options[name]):
                    raise _outdated(client, name, options[name]) from None
                dropped.add(name)

    def _learn(self, welcome: Optional[Dict[str, Any]], name: Optional[str] = None) -> None:
        if welcome is not self._welcome:
            self._welcome, self._unknown = welcome, set()
        if name is not None:
            self._unknown.add(name)

    def _fit(self, client: Any, welcome: Dict[str, Any], options: Dict[str, Any]) -> Dict[str, Any]:
        self._learn(welcome)
        listed = welcome.get("options")
        known = set(listed) if isinstance(listed, (list, tuple)) else None
        sent = {}
        for name, value in options.items():
            ours = name in p.ALL_OPTIONS_BY_NAME
            if ours and (name in self._unknown or known is not None and name not in known):
                if not is_default(name, value):
                    raise _outdated(client, name, value)
                continue
            sent[name] = value
        return sent


def _unknown_option(refused: JobFailed, sent: Dict[str, Any]) -> Optional[str]:
    """The option of ours an engine refused as unknown, or None for any other refusal."""
    field = refused.field or ""
    name = field[len("options."):] if field.startswith("options.") else None
    if refused.code != p.E_INVALID or "unknown option" not in (refused.message or ""):
        return None
    return name if name in sent and name in p.ALL_OPTIONS_BY_NAME else None


def _outdated(client: Any, name: str, value: Any) -> EngineOutdated:
    """name: an option, or "previous_frame" for frames of an animation (capability `frames`)."""
    welcome = client.welcome or {}
    idle = getattr(client, "idle_timeout", 0)
    by_itself = " (one a plugin started also stops by itself after %g minutes without work)" % (idle / 60) \
        if idle else ""
    lacks = "cannot stylize frames of an animation (capability 'frames')" if name == "previous_frame" else \
        "does not know the option '%s', set to %r" % (name, value)
    keep = "" if name == "previous_frame" else \
        "; or leave '%s' at its default, %r" % (name, p.ALL_OPTIONS_BY_NAME[name].default)
    return EngineOutdated("the engine running on %s (pid %s) is older than this plugin: it %s; restart it: python3 "
                          "-m engine_server stop, and the next job starts the installed engine%s%s"
                          % (client.endpoint, welcome.get("pid"), lacks, by_itself, keep), name)
