"""Where files live: the bundled rule file and the user's own directories."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

APP = "refundadvisor"
RULES_ENV = "REFUNDADVISOR_RULES"


def bundled_rules() -> Path:
    """The default rule file: inside the installed package, or at the checkout's root."""
    packaged = Path(__file__).with_name("rules.yaml")  # the wheel carries a copy here
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "rules.yaml"


def config_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The user's configuration directory for refundadvisor (XDG)."""
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / APP


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The user's cache directory for refundadvisor (XDG); safe to delete at any time."""
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / APP


def rules_path(explicit: Optional[str] = None, env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """Which rule file to use, and why: --rules > $REFUNDADVISOR_RULES > user config > bundled."""
    if explicit:
        return explicit, "--rules"
    if env.get(RULES_ENV):
        return env[RULES_ENV], RULES_ENV
    user = config_dir(env) / "rules.yaml"
    if user.is_file():
        return str(user), "user config"
    return str(bundled_rules()), "bundled"
