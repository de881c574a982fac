"""`python -m engine_server ...` (see engine_server/cli/main.py)."""

import sys

from .cli.main import main
from .logs import redirect_native_stderr

if __name__ == "__main__":
    redirect_native_stderr()
    sys.exit(main())
