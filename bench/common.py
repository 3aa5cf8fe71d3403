"""What the bench scripts share: the command under test, a clean environment, the machine."""

import os
import platform
import shutil
import sys
import tempfile


def command_path(script: str) -> str:
    """The refundadvisor command installed beside this Python."""
    beside = os.path.join(os.path.dirname(sys.executable), "refundadvisor")
    found = beside if os.path.exists(beside) else shutil.which("refundadvisor")
    if not found:
        sys.exit(f"{script}: the refundadvisor command is not installed in this environment; pip install . first")
    return found


def clean_env() -> dict:
    """The environment a measurement runs in: bytecode written as after an install, an empty
    rule cache (warmed by the script) and no refund history of the user's."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="refundadvisor-bench-cache-")
    env["REFUNDADVISOR_HOME"] = tempfile.mkdtemp(prefix="refundadvisor-bench-home-")
    env.pop("REFUNDADVISOR_RULES", None)
    env.pop("REFUNDADVISOR_PLATFORM", None)
    return env


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
