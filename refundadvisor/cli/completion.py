"""completion: Tab completion for bash, zsh, fish and PowerShell, with Typer's own scripts.

The app keeps ``add_completion=False`` (no --install-completion on every command's help); the
completion requests themselves (``_REFUNDADVISOR_COMPLETE=...``) are answered by Typer before any
command runs, so start-up does not change.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from . import CliError, app, user_errors
from .options import complete_ids

PROG = "refundadvisor"
COMPLETE_VAR = "_REFUNDADVISOR_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")

completion_app = typer.Typer(
    help="Tab completion for your shell: 'completion install' adds it, 'completion show' prints the script.",
    context_settings={"help_option_names": ["-h", "--help"]}, no_args_is_help=True, rich_markup_mode=None)
app.add_typer(completion_app, name="completion")

ShellArg = Annotated[Optional[str], typer.Argument(metavar="[SHELL]", help="bash, zsh, fish or powershell [default: the shell you run].", show_default=False, autocompletion=complete_ids(SHELLS))]


def _shell(shell: Optional[str]) -> str:
    if shell is None:
        from typer._completion_shared import _get_shell_name

        shell = _get_shell_name()
        if shell is None:
            raise CliError(f"cannot tell which shell you use; name it, e.g. '{PROG} completion show bash'")
    shell = shell.lower()
    if shell not in SHELLS:
        raise CliError(f"completion: {shell[:40]!r} is not a shell refundadvisor completes; use one of bash, zsh, fish, powershell")
    return shell


@completion_app.command("show")
def show(shell: ShellArg = None) -> None:
    """Print the completion script, e.g. to add to your shell's start-up file yourself."""
    with user_errors():
        from typer._completion_classes import completion_init
        from typer._completion_shared import get_completion_script

        completion_init()
        sys.stdout.write(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=_shell(shell)) + "\n")


def _home() -> str:
    """The home folder the installer writes to, refused unless it is a real, plainly named folder:
    Typer's installer writes ``source '<home>/...'`` into the shell's start-up file as it is, so a
    quote or a line break in the path would break every new shell (or run what follows it)."""
    home = os.environ.get("HOME", "")
    if not home or not os.path.isabs(home) or not os.path.isdir(home):
        raise CliError(f"completion install: HOME ({home[:60]!r}) is not an existing folder given as an absolute path; "
                       f"set HOME, or add the script yourself: '{PROG} completion show SHELL > FILE', then source FILE")
    if any(character in home for character in "'\"\\$`\n\r") or not home.isprintable():
        raise CliError(f"completion install: your home folder's path holds a quote, '$', '`' or a control character, "
                       f"which the shell start-up line cannot hold safely; add the script yourself: "
                       f"'{PROG} completion show SHELL > FILE', then source FILE")
    return home


@completion_app.command("install")
def install(shell: ShellArg = None) -> None:
    """Install completion for your shell (in its start-up files); takes effect in a new shell."""
    with user_errors():
        from typer._completion_classes import completion_init
        from typer._completion_shared import install as install_script

        completion_init()
        name = _shell(shell)
        _home()
        try:
            installed, path = install_script(shell=name, prog_name=PROG, complete_var=COMPLETE_VAR)
        except OSError as error:
            raise CliError(f"completion: cannot write the {name} completion script ({error.strerror or error})", 1) from None
        sys.stderr.write(f"refundadvisor: {installed} completion installed in {path}; open a new shell to use it\n")
