"""``python -m refundadvisor`` and the ``refundadvisor`` console script.

This module imports nothing before the Ctrl-C handler is in place: a Ctrl-C while the command
line loads (Typer, Rich, the commands: the first tenths of a second) ends the program with one
line and exit 130, as it does once a command runs, never with a Python traceback.
"""

import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as refundadvisor.cli documents it


def main() -> None:
    try:
        from .cli import main as run

        run()
    except KeyboardInterrupt:
        try:
            sys.stderr.write("refundadvisor: error: interrupted\n")
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
