"""completion: Tab completion for bash, zsh, fish and PowerShell, with Typer's own scripts.

The app keeps ``add_completion=False`` (no --install-completion on every command's help); the
completion requests themselves (``_REFUNDADVISOR_COMPLETE=...``) are answered by Typer before any
command runs, so start-up does not change.
"""

from __future__ import annotations

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


@completion_app.command("install")
def install(shell: ShellArg = None) -> None:
    """Install completion for your shell (in its start-up files); takes effect in a new shell."""
    with user_errors():
        from typer._completion_classes import completion_init
        from typer._completion_shared import install as install_script

        completion_init()
        name = _shell(shell)
        try:
            installed, path = install_script(shell=name, prog_name=PROG, complete_var=COMPLETE_VAR)
        except OSError as error:
            raise CliError(f"completion: cannot write the {name} completion script ({error.strerror or error})", 1) from None
        sys.stderr.write(f"refundadvisor: {installed} completion installed in {path}; open a new shell to use it\n")
