"""The ``ssot`` command installed with the package.

``ssot check`` runs the checker compiled into the package, so a Python project's CI and
pre-commit need no Rust toolchain. The other subcommands (``serve``, ``worker``,
``doctor``, ``token``, ``demo``) live in the full ``ssot`` binary: this command hands them
to it when one is found (``$SSOT_BIN``, or another ``ssot`` on ``PATH``), and says how to
get it otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import List, Optional

from . import _native

_FULL_BINARY_HELP = (
    "error: `ssot {cmd}` is part of the full ssot binary, which this Python package does not\n"
    "ship (it brings `ssot check` only). Build it with `cargo install --path crates/ssot-cli`\n"
    "from the redis-ssot repository, then put it on PATH or point SSOT_BIN at it."
)


def _full_binary() -> Optional[str]:
    explicit = os.environ.get("SSOT_BIN")
    if explicit:
        return explicit
    me = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which("ssot", path=folder)
        if found and os.path.realpath(found) != me and not _is_python_script(found):
            return found
    return None


def _is_python_script(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "check":
        return int(_native.check(args[1:]))
    if not args or args[0] in ("-h", "--help", "help"):
        print("usage: ssot check [PATHS]... [OPTIONS]   (see `ssot check --help`)")
        print("serve, worker, doctor, token and demo need the full ssot binary.")
        return 0 if args else 2
    full = _full_binary()
    if full is None:
        print(_FULL_BINARY_HELP.format(cmd=args[0]), file=sys.stderr)
        return 2
    os.execv(full, [full, *args])
    return 2  # unreachable: execv replaces the process


if __name__ == "__main__":
    sys.exit(main())
