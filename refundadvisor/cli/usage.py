"""Usage errors as one sentence with the fix, like every other error, and a closed pipe as a
quiet success: the app's Click group, made by Typer with this class (``typer.Typer(cls=Group)``).

Click prints a usage error as a four-line block ("Usage: ...", "Try ...", "", "Error: ...");
here it becomes ``refundadvisor: error: no such option: --colour (did you mean --no-color?);
see 'refundadvisor check --help'`` and exit 2. Kept in one place so that it merges as a unit.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from typer._click import Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup
from typer.exceptions import Abort, Exit

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_QUOTED = re.compile(r"'([^']{80,})'")


def one_line(error: ClickException) -> str:
    """A Click error as one sentence: what was wrong, and where to look for the fix."""
    from ..redact import mask

    # keys are masked before the message is cut short or joined into one line (either could hide
    # a key from the output sink: half a key, or a key broken over two lines joined by a space)
    message = mask(error.format_message().strip())[0]
    message = message.replace("Possibly you meant", "did you mean").replace("Possible options:", "did you mean one of")
    message = _QUOTED.sub(lambda match: f"'{match.group(1)[:60]}...' ({len(match.group(1))} characters)", message)
    message = " ".join(message.split())  # one line, whatever Click wrapped
    message = message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message
    message = message.rstrip(".")
    context = getattr(error, "ctx", None)
    if isinstance(error, UsageError) and context is not None:
        root = context.find_root().info_name or ""
        path = "refundadvisor" + context.command_path[len(root):]  # `python -m refundadvisor` too
        message += f"; see '{path} --help'"
    return message


def _quiet_stdout() -> None:
    """The reader went away: send the rest of stdout (and Python's flush at exit) nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


class Group(TyperGroup):
    """The root group: Click's own errors in the tool's one-sentence form."""

    def _main_shell_completion(self, ctx_args: Any, prog_name: str, complete_var: Any = None) -> None:
        # Typer registers its completion classes only with add_completion=True (which would put
        # --install-completion on every help); a completion request registers them here instead
        if any(name.endswith("_COMPLETE") for name in os.environ):
            from typer._completion_classes import completion_init

            completion_init()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)

    def make_context(self, *args: Any, **extra: Any) -> Context:
        try:
            return super().make_context(*args, **extra)
        except BrokenPipeError:  # `refundadvisor --help | head -1`
            _quiet_stdout()
            raise Exit(EXIT_OK) from None

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # `| head -1`: the verdict was written as far as anyone reads; not an error
            _quiet_stdout()
            raise Exit(EXIT_OK) from None

    def main(self, *args: Any, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **extra)
        from ..output import installed

        with installed():  # every byte written from here on is masked and defused
            code = self._run(*args, **extra)
        sys.exit(code)

    def _run(self, *args: Any, **extra: Any) -> Any:
        """Run the command; the exit code, with every failure said in one sentence on stderr."""
        from ..output import OutputError

        try:
            result = super().main(*args, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else EXIT_OK
        except NoArgsIsHelpError as error:  # a group named alone: its help, as Click shows it
            error.show()
            code = error.exit_code
        except ClickException as error:
            sys.stderr.write(f"refundadvisor: error: {one_line(error)}\n")
            code = error.exit_code
        except Abort:
            sys.stderr.write("\nrefundadvisor: error: input ended; nothing was checked\n")
            code = EXIT_USAGE
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (EXIT_OK if done.code is None else EXIT_DATA)
        except OutputError as error:
            sys.stderr.write(f"refundadvisor: error: {error}; the output is incomplete\n")
            return EXIT_DATA
        try:
            sys.stdout.flush()  # a full disk often shows only here
        except BrokenPipeError:
            _quiet_stdout()
        except OutputError as error:
            sys.stderr.write(f"refundadvisor: error: {error}; the output is incomplete\n")
            return EXIT_DATA
        return code
