"""Where files live: the bundled rule file and the user's own directories."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Mapping, Optional

APP = "refundadvisor"
RULES_ENV = "REFUNDADVISOR_RULES"
PLATFORM_ENV = "REFUNDADVISOR_PLATFORM"
# The shared rule file names the default platform on a line of its own (rules validate checks it)
_DEFAULT_LINE = re.compile(r"^default_platform:[ \t]*([a-z][a-z0-9_-]*)[ \t]*(?:#.*)?$", re.MULTILINE)


def _data_root() -> Path:
    """Where the bundled rule files are: inside the installed package, or at the checkout's root."""
    packaged = Path(__file__).parent  # the wheel carries rules.yaml and platforms/ here
    if (packaged / "rules.yaml").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent


def bundled_rules() -> Path:
    """The shared rule file every bundled platform builds on (the root rules.yaml)."""
    return _data_root() / "rules.yaml"


def bundled_cases() -> Path:
    """The case library shipped with refundadvisor (real refund requests with known outcomes)."""
    return _data_root() / "cases"


@functools.lru_cache(maxsize=None)  # the installed files do not change while the program runs
def default_platform() -> str:
    """The platform used when none is chosen: the shared rule file's `default_platform`."""
    try:
        with open(bundled_rules(), encoding="utf-8") as handle:
            found = _DEFAULT_LINE.search(handle.read(2 * 1024 * 1024))
    except (OSError, UnicodeDecodeError):
        found = None
    platforms = _platform_files()
    if found and found.group(1) in platforms:
        return found.group(1)
    return next(iter(platforms), "")


@functools.lru_cache(maxsize=None)
def _platform_files() -> dict[str, Path]:
    folder = _data_root() / "platforms"
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def bundled_platforms() -> dict[str, Path]:
    """Every bundled platform's rule file by name, the default first."""
    found = dict(_platform_files())
    default = default_platform()
    return {default: found[default], **found} if default in found else found


def config_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The user's configuration directory for refundadvisor (XDG)."""
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / APP


HOME_ENV = "REFUNDADVISOR_HOME"


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where refundadvisor keeps the user's data: $REFUNDADVISOR_HOME, else the XDG data directory."""
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV])
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / APP


def history_path(explicit: Optional[str] = None, env: Mapping[str, str] = os.environ) -> Path:
    """The refund-history database: --history PATH, else history.db in the data directory."""
    return Path(explicit) if explicit else data_dir(env) / "history.db"


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The user's cache directory for refundadvisor (XDG); safe to delete at any time."""
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / APP


def is_regular_file(path: str) -> bool:
    """Whether a path is a regular file (not a FIFO, device or folder, which could hang a read or
    make no sense); False for anything that cannot be looked at."""
    import stat

    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


class UnknownPlatform(ValueError):
    """A platform name with no bundled rule file."""

    def __init__(self, name: str, source: str):
        self.name, self.source = name, source
        known = ", ".join(bundled_platforms())
        shown = repr(name) if len(name) <= 60 else f"{name[:40]!r}... ({len(name)} characters)"
        super().__init__(f"{source}: no bundled rule file for platform {shown}; bundled: {known} "
                         "(or give any rule file with --rules)")


def platform_path(name: str, source: str = "--platform") -> Path:
    """The bundled rule file of a platform, or UnknownPlatform."""
    found = bundled_platforms().get(name.strip().lower())
    if found is None:
        raise UnknownPlatform(name, source)
    return found


def rules_path(explicit: Optional[str] = None, env: Mapping[str, str] = os.environ,
               platform: Optional[str] = None) -> tuple[str, str]:
    """Which rule file to use, and why: --rules > --platform > $REFUNDADVISOR_RULES >
    $REFUNDADVISOR_PLATFORM > the user's config > the bundled default."""
    if explicit:
        return explicit, "--rules"
    if platform:
        return str(platform_path(platform)), "--platform"
    if env.get(RULES_ENV):
        return env[RULES_ENV], RULES_ENV
    if env.get(PLATFORM_ENV):
        return str(platform_path(env[PLATFORM_ENV], PLATFORM_ENV)), PLATFORM_ENV
    user = config_dir(env) / "rules.yaml"
    # anything there is the user's choice, and the loader says what is wrong with a FIFO, a
    # folder or a dangling link; lexists is False for a path the system cannot even look up
    if os.path.lexists(user):
        return str(user), "user config"
    return str(platform_path(default_platform())), "bundled"
