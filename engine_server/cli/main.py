"""The engine's command line: `python -m engine_server COMMAND ...`.

Sub-commands come from modules with `register(subparsers)`; each sets `func(args) -> exit code`.
User errors print one line on stderr and exit non-zero; details go to the log file
(shared.paths.log_path()), never a traceback on the terminal.
"""

import argparse
import importlib
import logging
import sys

from shared.options import OptionError
from shared.paths import log_path

from ..logs import setup_logging

COMMAND_MODULES = ("engine_server.cli.stylize", "engine_server.cli.batch", "engine_server.cli.daemon_commands",
                   "engine_server.cli.styles")
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1

log = logging.getLogger("engine_server")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr (plus where to find --help)."""

    def error(self, message):
        self.exit(EXIT_USER_ERROR, "error: %s (see %s --help)\n" % (message, self.prog))


def build_parser():
    parser = ArgumentParser(prog="python -m engine_server",
                            description="Neural style engine: stylize images, compare losses, run the "
                                        "background engine, manage the style library.")
    parser.add_argument("--verbose", action="store_true", help="also print the log on stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            if error.name != name:          # the module exists but is broken: that is a bug, show it
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv=None):
    setup_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))
    log.info("command line: %s", " ".join(sys.argv[:1] + list(argv if argv is not None else sys.argv[1:])))
    from ..core.errors import EngineError
    try:
        return int(args.func(args) or 0)
    except EngineError as error:
        log.warning("%s failed: %s", args.command, error.message)
        print("error: %s" % error.message, file=sys.stderr)
        return EXIT_USER_ERROR
    except OptionError as error:
        print("error: %s" % error.message, file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        log.exception("out of memory")
        print("error: out of memory; try a smaller --size", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as error:  # a bug: keep the terminal clean, keep the details in the log
        log.exception("unexpected failure")
        print("error: unexpected failure (%s: %s); details in %s"
              % (type(error).__name__, " ".join(str(error).split())[:200], log_path()), file=sys.stderr)
        return EXIT_INTERNAL
