"""``msoptim`` / ``python -m msoptim``: the command line (``preview``, ``demo``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

USAGE = """usage: msoptim COMMAND [ARGS...]

commands:
  preview   evaluate a learning-rate function, schedule or group configuration
            (msoptim preview --help)
  demo      train a small ResNet on scikit-learn's digits with MindSpore's group recipe
            (msoptim demo --help; needs pip install 'msoptim[demo]')

options:
  -h, --help     show this message
  --version      print the msoptim version"""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``msoptim COMMAND ...``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "--version":
        from msoptim import __version__

        print(f"msoptim {__version__}")
        return 0
    if command == "preview":
        from msoptim import preview

        return preview.main(rest)
    if command == "demo":
        from msoptim import demo

        return demo.main(rest)
    print(f"{USAGE}\n\nmsoptim: error: unknown command {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
