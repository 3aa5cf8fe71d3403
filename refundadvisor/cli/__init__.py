"""The command line: parse, ask, call the advisor, render, and map errors to exit codes.

No refund knowledge lives here; it all comes from the rule file. This module holds the app,
the exit codes and the error handling the commands share; the commands live in one module per
group (check and draft, batch, history, rules) and import anything heavy inside their bodies,
so that start-up stays close to Typer's own.
"""


import os
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Annotated, Iterator, Optional

import typer

from .. import __version__, paths

# Exit codes (documented in the README).
EXIT_OK = 0  # a verdict was printed, whatever its band
EXIT_DATA = 1  # a data or runtime error: the rule file is unreadable or invalid
EXIT_USAGE = 2  # bad input or missing facts
EXIT_BELOW = 3  # --fail-below: the verdict (any batch row) is below the band given
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # batch stopped by SIGTERM (128 + SIGTERM, as shells report it)

HELP = "How likely a refund is for an unexpected API charge, why, and what to gather."
HELP_END = "A heuristic guide grounded in published policy, not a guarantee."

from .usage import Group  # noqa: E402  (usage errors as one sentence; a closed pipe exits 0)

app = typer.Typer(
    name="refundadvisor",
    cls=Group,
    help=HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class CliError(Exception):
    """An error to show as one sentence on stderr, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        self.code = code
        super().__init__(message)


def is_interactive(no_input: bool = False) -> bool:
    """Prompt only when both stdin and stdout are terminals and --no-input was not given."""
    if no_input or os.environ.get("REFUNDADVISOR_NO_INPUT"):
        return False
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def fail(message: str, code: int) -> typer.Exit:
    """Print one error sentence on stderr (never echoing an API key) and return the Exit to raise."""
    from ..redact import mask

    sys.stderr.write(f"refundadvisor: error: {mask(message)[0]}\n")
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn every expected failure into one sentence on stderr and a documented exit code."""
    from ..facts import FactError, MissingFacts
    from ..history import HistoryError
    from ..rules.problems import RulesError

    try:
        yield
    except CliError as error:
        raise fail(str(error), error.code) from None
    except FactError as error:
        raise fail(f"{_flag(error.fact)}: {error}", EXIT_USAGE) from None
    except MissingFacts as error:
        flags = ", ".join(_flag_for_missing(name) for name in error.names)
        raise fail(f"missing {flags}; pass them as flags, or run in a terminal to be asked", EXIT_USAGE) from None
    except RulesError as error:
        errors = [problem for problem in error.problems if problem.severity == "error"]
        if len(errors) == 1:
            raise fail(errors[0].format(), EXIT_DATA) from None
        for problem in errors:
            sys.stderr.write(problem.format() + "\n")
        raise fail(f"{len(errors)} errors in the rule file {errors[0].path}; fix them, "
                   f"then check with 'refundadvisor rules validate {errors[0].path}'", EXIT_DATA) from None
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            sys.stderr.write("\n")  # end the half-typed prompt line first
        raise fail("interrupted; nothing was checked", EXIT_INTERRUPTED) from None
    except EOFError:
        raise fail("input ended before the interview finished; nothing was checked", EXIT_USAGE) from None
    except HistoryError as error:
        raise fail(str(error), EXIT_DATA) from None
    except StdinClosed:
        raise fail(STDIN_CLOSED, EXIT_USAGE) from None


def _flag(fact: str) -> str:
    from .options import flag_of

    return flag_of(fact)


def _flag_for_missing(name: str) -> str:
    from ..model import CHARGE_TIME_FACT
    from .options import AGO_FLAG

    if name == CHARGE_TIME_FACT:
        return f"{_flag(name)} (or {AGO_FLAG})"
    return _flag(name)


def require_path(path: Optional[str], flag: str) -> None:
    """An output FILE given as '' is a mistake (an unset shell variable), never silently ignored."""
    if path is not None and not path.strip():
        raise CliError(f"{flag}: the file name is empty; give a path, like {flag} out.txt")


def write_output(path: str, text: str, flag: str = "--output") -> None:
    """Write a command's output to FILE (given by ``flag``), or say in one sentence why it cannot.

    The text is masked and defused like everything else the program writes, and it replaces the
    file whole or not at all: it goes to a temporary file in the same folder, which is then
    renamed over PATH, so a failed write (a full disk) leaves the previous file as it was. An
    empty PATH is a usage error. A PATH that exists and is not a regular file is written to
    directly only when it is a device (/dev/stdout at a terminal, /dev/null) or a pipe someone
    reads (/dev/stdout piped on); a FIFO nobody reads, a socket or a folder is refused at once,
    never waited on."""
    import errno
    import stat
    import tempfile

    from ..output import clean

    require_path(path, flag)
    data = clean(text).encode("utf-8", "replace")

    def failed(error: BaseException) -> CliError:
        reason = getattr(error, "strerror", None) or str(error)
        return CliError(f"{flag}: cannot write {path!r} ({reason}); nothing was changed there", EXIT_DATA)

    try:
        existing = os.stat(path)
    except FileNotFoundError:
        existing = None
    except (OSError, ValueError) as error:
        raise failed(error) from None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        mode = existing.st_mode
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise CliError(f"{flag}: {path!r} is {kind}; give the path of a file to write", EXIT_DATA)
        try:
            # O_NONBLOCK: a FIFO with no reader fails at once (ENXIO) instead of waiting for ever
            descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        except OSError as error:
            if error.errno == errno.ENXIO:
                raise CliError(f"{flag}: {path!r} is a named pipe (FIFO) that nobody reads; give the path "
                               "of a regular file", EXIT_DATA) from None
            raise failed(error) from None
        except ValueError as error:
            raise failed(error) from None
        try:
            os.set_blocking(descriptor, True)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
        except (OSError, ValueError) as error:
            raise failed(error) from None
        return
    target = os.path.realpath(path)  # a regular file (or none yet) through a symlink, keeping it
    folder, name = os.path.split(target)
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{name[:100]}.", suffix=".tmp", dir=folder or ".")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if existing is not None:
            os.chmod(temporary, stat.S_IMODE(existing.st_mode))
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
        temporary = None
    except (OSError, ValueError) as error:
        raise failed(error) from None
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"refundadvisor {__version__}\n")
        raise typer.Exit(EXIT_OK)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """With no command, run `check`: the interview in a terminal."""
    if ctx.invoked_subcommand is None:
        from .check import check

        check()


def _app_help() -> str:
    """The app's help, with the examples the shared rule file gives."""
    from .check import _examples
    from .options import help_with_examples

    return help_with_examples(HELP, _examples("refundadvisor")) + "\n\n" + HELP_END


def load_rules(explicit: Optional[str], platform: Optional[str] = None):
    """The rule set to use, and what chose it (compiled once per file content, then cached)."""
    from ..rules.cache import load

    if explicit and platform:
        raise CliError("give --rules or --platform, not both")
    try:
        path, chosen_by = paths.rules_path(explicit, platform=platform)
    except paths.UnknownPlatform as error:
        raise CliError(str(error)) from None
    ruleset = load(path)
    if ruleset.is_base:
        raise CliError(f"{path} holds the shared heuristics, not a platform's rules; choose a platform with "
                       f"--platform ({', '.join(paths.bundled_platforms())}) or a rule file that extends it")
    return ruleset, chosen_by


def parse_now(text: Optional[str]) -> datetime:
    """The moment to evaluate at: now, or --now for a reproducible run."""
    if not text:
        return datetime.now(timezone.utc)
    from ..facts import FactError, parse_moment

    try:
        return parse_moment(text, "--now")
    except FactError as error:
        raise CliError(f"--now: {error}") from None


def band_index(ruleset, band_id: Optional[str]) -> Optional[int]:
    """The position of --fail-below's band (best first), or None when not given."""
    if band_id is None:
        return None
    ids = [band.id for band in ruleset.bands]
    if band_id not in ids:
        raise CliError(f"--fail-below: {band_id!r} is not a band; use one of {', '.join(ids)}")
    return ids.index(band_id)


def is_below(ruleset, band_id: str, threshold: Optional[int]) -> bool:
    """Whether a band lies below the --fail-below threshold."""
    return threshold is not None and [band.id for band in ruleset.bands].index(band_id) > threshold


# The commands, registered on `app` as each module is imported: this order is the help's order.
from . import check, batch, history, rules, completion  # noqa: E402,F401
from .evidence import evidence_app  # noqa: E402

app.add_typer(evidence_app, name="evidence")

app.info.help = _app_help()
app.info.epilog = check.exit_code_epilog()


def _only_the_command_run(argv: list[str]) -> None:
    """Typer builds every command's options on every run; a script calling one command pays
    for all of them. Keep just the command named (all of them for help or an unknown name)."""
    if not argv or argv[0].startswith("-") or "-h" in argv or "--help" in argv:
        return
    commands = [info for info in app.registered_commands if info.name == argv[0]]
    groups = [info for info in app.registered_groups if info.name == argv[0]]
    if commands or groups:
        app.registered_commands, app.registered_groups = commands, groups


class StdinClosed(OSError):
    """stdin was read ('-') but the program was started without one (``<&-``)."""


STDIN_CLOSED = "stdin is closed: nothing is attached to it; pipe the input in, or give a file"


class _ClosedStdin:
    """What stdin is when the program was started without one (``<&-``): reading it fails with
    one OSError that says so, which every reader of '-' turns into its one sentence."""

    encoding = "utf-8"
    errors = "replace"
    closed = False

    @property
    def buffer(self) -> "_ClosedStdin":
        return self

    def _closed(self, *args, **kwargs):
        import errno

        raise StdinClosed(errno.EBADF, STDIN_CLOSED)

    read = read1 = readline = readlines = readinto = fileno = __iter__ = _closed

    def isatty(self) -> bool:
        return False

    def readable(self) -> bool:
        return False


def _prepare_stdin() -> None:
    """A closed stdin reads as an error (not as Python's None), and typed text that the locale's
    encoding cannot decode (PYTHONIOENCODING=ascii, 'café') arrives with U+FFFD in its place
    instead of stopping the program."""
    if sys.stdin is None:
        sys.stdin = _ClosedStdin()
    elif getattr(sys.stdin, "errors", None) == "strict" and hasattr(sys.stdin, "reconfigure"):
        try:
            sys.stdin.reconfigure(errors="replace")
        except (OSError, ValueError, AttributeError):
            pass


def main() -> None:
    """The console script: run the app, ending quietly on a closed pipe."""
    try:
        _prepare_stdin()
        _only_the_command_run(sys.argv[1:])
        app()
    except BrokenPipeError:
        # the reader went away (e.g. `| head -1`): stop quietly, and keep Python from
        # complaining when it flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_OK)
    except KeyboardInterrupt:
        sys.stderr.write("refundadvisor: error: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    except StdinClosed:  # read outside a command's error handling
        sys.stderr.write(f"refundadvisor: error: {STDIN_CLOSED}\n")
        sys.exit(EXIT_USAGE)
    except (KeyError, ValueError):
        # A completion request (the shell sets _REFUNDADVISOR_COMPLETE, COMP_WORDS and COMP_CWORD)
        # made by hand without the shell's variables: Typer reads them unchecked. Anything else is
        # a bug and keeps its traceback.
        if not any(name.endswith("_COMPLETE") and name.startswith("_REFUNDADVISOR") for name in os.environ):
            raise
        sys.stderr.write("refundadvisor: error: a completion request needs the variables your shell sets "
                         "(COMP_WORDS, COMP_CWORD); use 'refundadvisor completion install'\n")
        sys.exit(EXIT_USAGE)
