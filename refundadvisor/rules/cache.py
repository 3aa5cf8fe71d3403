"""Compiled rule sets kept between runs: an optimisation that is never a source of truth.

Parsing and validating YAML costs more than the rest of a `check`, so the compiled RuleSet is
kept in the user's cache directory. The cache cannot lie:

- the format is JSON that can only rebuild this package's own plain types (no pickle: reading
  it never runs code);
- an entry is keyed by the code's version and the asked-for file's path and content, and it
  records the sha256 of every file it was compiled from (extends: included); each is hashed
  again on load and any difference means the entry is ignored;
- the entry is signed with a key that only this user's refundadvisor knows (HMAC-SHA256, the key
  kept in the data directory), so an entry planted or edited by anything else is ignored;
- anything unexpected (unreadable, truncated, a FIFO, a foreign type) means: compile instead.

``REFUNDADVISOR_NO_CACHE=1`` bypasses it altogether.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

from .. import __version__
from .. import conditions, model
from ..paths import cache_dir, data_dir, is_regular_file

NO_CACHE_ENV = "REFUNDADVISOR_NO_CACHE"
MAX_BYTES = 2 * 1024 * 1024  # the same limit as read.MAX_BYTES
ENTRY_LIMIT = 16 * 1024 * 1024
CODEC = 4  # bump when the encoding below changes, or what validation accepts (4: a rule's settles, an estimate's settled)

# The only types an entry can rebuild.
_TYPES = {cls.__name__: cls for cls in (
    model.Source, model.Parameter, model.Policy, model.Choice, model.Bound, model.FactSpec, model.ChecklistItem,
    model.Outcome, model.Band, model.Rule, model.Expectation, model.RuleTest, model.Deadline, model.Estimate,
    model.DraftTemplate, model.RuleSet, model.HistoryFact, conditions.Test, conditions.All, conditions.Any_,
    conditions.Not,
)}


def _vocabulary(ruleset):
    """What the command line needs of the shared rule file (its facts, history facts and help
    examples): a small entry that loads in a fraction of the whole rule set's time."""
    return ruleset._replace(rules=(), tests=(), checklist={}, deadlines=(), estimates=(), draft=None,
                            policy=ruleset.policy._replace(sources={}, parameters={}))


def load_vocabulary(path: str):
    """The rule set of ``path`` with only its facts, history facts and examples (see _vocabulary)."""
    return load(path, slim=True)


def load(path: str, slim: bool = False):
    """The compiled rule set for a rule file, from the cache when a verified entry exists.

    Raises RulesError for a file that cannot be used (never cached)."""
    from . import load as compile_file
    from .prepared import Prepared

    def compiled():
        ruleset = compile_file(path)[0]
        return _vocabulary(ruleset) if slim else ruleset

    if os.environ.get(NO_CACHE_ENV) or not is_regular_file(path):
        return compiled()  # the full loader says what is wrong with an odd path
    data = _read_regular(path, MAX_BYTES + 1)
    if not data or len(data) > MAX_BYTES:
        return compiled()
    secret = _secret()
    entry_file = _entry_file(path, data, "slim" if slim else "")
    if secret is not None and entry_file is not None:
        cached = _read(entry_file, secret)
        if cached is not None:
            return cached._replace(path=path, prepared=Prepared())
    ruleset = compiled()
    if secret is not None and entry_file is not None and ruleset.layers and ruleset.layers[0][1] == _sha(data):
        _write(entry_file, ruleset, secret)
    return ruleset


def _read_regular(path: str, limit: int) -> bytes:
    """Up to ``limit`` bytes of a regular file; b"" for anything else (a FIFO, a device, a folder,
    a missing or unreadable file). The type is checked on the descriptor, opened without blocking,
    so nothing swapped in between the check and the read can hang the run."""
    import stat

    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return b""
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return b""
        with os.fdopen(descriptor, "rb") as handle:
            descriptor = -1
            return handle.read(limit)
    except OSError:
        return b""
    finally:
        if descriptor >= 0:
            os.close(descriptor)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry_file(path: str, data: bytes, kind: str = "") -> Optional[Path]:
    try:
        where = os.path.realpath(path)
    except (OSError, ValueError):
        return None
    key = _sha(f"{CODEC}|{model.ENGINE_VERSION}|{__version__}|{kind}|{where}|".encode("utf-8", "surrogateescape") + data)
    return cache_dir() / "rules" / f"{key}.json"


def _secret() -> Optional[bytes]:
    """This user's signing key (made on first use, readable by the user alone); None when the
    data directory cannot hold it, and then nothing is cached."""
    key_file = data_dir() / "cache.key"
    try:
        if is_regular_file(str(key_file)):
            with open(key_file, "rb") as handle:
                secret = handle.read(128)
            if len(secret) >= 32:
                return secret
        elif os.path.lexists(key_file):
            return None  # a FIFO, folder or link there: opening it could block; cache nothing
        key_file.parent.mkdir(parents=True, exist_ok=True)
        secret = os.urandom(32)
        # O_NONBLOCK: should a FIFO appear there meanwhile, the open fails instead of waiting for a reader
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
                             | getattr(os, "O_NONBLOCK", 0), 0o600)
        if not is_regular_file(str(key_file)):
            os.close(descriptor)
            return None
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secret)
        return secret
    except (OSError, ValueError):
        return None


def _signature(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def _read(entry_file: Path, secret: bytes):
    """A verified entry's rule set, or None (missing, foreign, stale, edited or unreadable)."""
    try:
        raw = _read_regular(str(entry_file), ENTRY_LIMIT + 1)
        if not raw or len(raw) > ENTRY_LIMIT:
            return None
        signature, _, payload = raw.partition(b"\n")
        if not hmac.compare_digest(signature.decode("ascii", "replace"), _signature(secret, payload)):
            return None
        entry = json.loads(payload, object_hook=_rebuild)
        for layer_path, layer_sha in entry["layers"]:
            if _sha(_read_regular(layer_path, MAX_BYTES + 1)) != layer_sha:
                return None
        ruleset = entry["ruleset"]
    except Exception:  # noqa: BLE001 - any surprise in a cache entry means: compile instead
        return None
    return ruleset if isinstance(ruleset, model.RuleSet) else None


def _write(entry_file: Path, ruleset, secret: bytes) -> None:
    payload = json.dumps({"layers": [list(layer) for layer in ruleset.layers],
                          "ruleset": encode(ruleset._replace(prepared=None))},
                         separators=(",", ":"), ensure_ascii=True).encode("ascii")
    try:
        entry_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=entry_file.parent, delete=False) as handle:
            handle.write(_signature(secret, payload).encode("ascii") + b"\n" + payload)
        os.replace(handle.name, entry_file)  # atomic: concurrent runs never see half a file
    except (OSError, ValueError):
        pass


# --- the codec: this package's NamedTuples as tagged JSON -----------------------------------------

def encode(value: Any) -> Any:
    """Plain JSON data for a rule set: NamedTuples, tuples and dicts tagged so they come back."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        name = type(value).__name__
        if _TYPES.get(name) is not type(value):
            raise TypeError(f"{name} is not a cacheable type")
        return {"$": name, "v": [encode(item) for item in value]}
    if isinstance(value, tuple):
        return {"$t": [encode(item) for item in value]}
    if isinstance(value, frozenset):
        return {"$f": sorted(encode(item) for item in value)}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {"$d": [[key, encode(item)] for key, item in value.items()]}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"{type(value).__name__} is not cacheable")


def _rebuild(value: dict) -> Any:
    """json's object_hook: each tagged object back to what ``encode`` was given (innermost first);
    builds nothing but the types listed in _TYPES."""
    if "$" in value:
        return _TYPES[value["$"]](*value["v"])
    if "$t" in value:
        return tuple(value["$t"])
    if "$f" in value:
        return frozenset(value["$f"])
    if "$d" in value:
        return dict(value["$d"])
    return value


def decode(text: str) -> Any:
    """The inverse of ``encode`` (from JSON text)."""
    return json.loads(text, object_hook=_rebuild)

