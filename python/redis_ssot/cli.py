"""The ``ssot`` command installed with the package.

Every subcommand (``serve``, ``worker``, ``doctor``, ``token``, ``demo``, ``check``) runs in
process: the whole Rust command is compiled into the extension module, so the wheel alone
runs it, with no Rust toolchain and no second executable (see python/README.md).
"""

from __future__ import annotations

import signal
import sys
from typing import List, Optional

from . import _native


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Ctrl-C belongs to the Rust command, as in the `ssot` binary: `serve` and `worker` shut
    # down gracefully on it, `check` stops at once. Python's handler would instead raise
    # KeyboardInterrupt after the command has already finished.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return int(_native.main(["ssot", *args]))


if __name__ == "__main__":
    sys.exit(main())
