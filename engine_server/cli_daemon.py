"""Placeholder: the daemon work replaces this with the start/stop/status/serve commands."""


def register(subparsers):
    pass
