"""What every command-line script of minigan shares: ``--help`` that shows defaults, and errors
printed as one line (no traceback) with a non-zero exit code."""

from __future__ import annotations

import argparse
import sys

# The errors a user can cause (bad arguments, missing files, no GPU, bad data) and should see as
# one readable line. Anything else is a bug in minigan and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, OSError, RuntimeError)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none (None) or the text gives it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        # `is`, not `in (None, False)`: 0 == False, and a default of 0 should still be shown.
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def print_error(error: BaseException) -> int:
    """Print ``error: <message>`` on one line to stderr; return the exit code 2."""
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"error: {message}", file=sys.stderr)
    return 2
