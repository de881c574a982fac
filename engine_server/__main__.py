"""`python -m engine_server ...` (see engine_server/cli.py)."""

import sys

from .cli import main, redirect_native_stderr

if __name__ == "__main__":
    redirect_native_stderr()
    sys.exit(main())
