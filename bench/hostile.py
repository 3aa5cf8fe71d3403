"""Every hostile input of issue 15, each run as its own process: exit code, wall time, peak memory,
and whether a traceback (or a leaked key, an escape, a lost file) came out.

    python bench/hostile.py [--timeout 20] [--only WORD] [--keep]

The promise measured: any hostile input is handled in under 2 s and 200 MB, with one sentence
and a documented exit code. Each input runs `refundadvisor ...` (the installed console script) in
a fresh temporary home; memory is the process's peak RSS from wait4() (its own children
included once reaped); a run past the timeout is killed with its process group and reported,
not suffered. Prints a markdown table; exits 1 when any row breaks the promise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import command_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED_EXITS = {0, 1, 2, 3, 130}
LIMIT_SECONDS, LIMIT_MB = 2.0, 200.0
MEMORY_CAP = 3 * 1024 ** 3  # address space per run
KEY = "sk-or-v1-" + "0123456789abcdef" * 4
CHECK = ["check", "--charge-type", "topup", "--amount", "5", "--ago", "3h", "--cause", "unused-credits", "--now",
         "2026-11-30T12:00:00Z"]
ROW = {"charge_type": "topup", "amount": 5, "ago": "3h", "cause": "unused-credits"}
BASE_RULES = (ROOT / "tests" / "rules_corpus" / "base.yaml.txt").read_text()


class Case:
    """One hostile input: the arguments, and what to prepare, feed, signal and check."""

    def __init__(self, section: str, name: str, args: list, *, env: Optional[dict] = None, stdin=None,
                 stdout: str = "pipe", setup: Optional[Callable] = None, signal_after: Optional[tuple] = None,
                 check: Optional[Callable] = None, fsize: Optional[int] = None):
        self.section, self.name, self.args, self.env, self.stdin = section, name, args, env or {}, stdin
        self.stdout, self.setup, self.signal_after, self.check, self.fsize = stdout, setup, signal_after, check, fsize


def jsonl(rows) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def lines(data: bytes) -> int:
    return data.count(b"\n")


def write(path: Path, text, mode: str = "w") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return str(path)


def leaks(marker: str) -> Callable:
    """A check: the marker (a key, an escape, a formula) must not reach stdout or stderr."""
    def check(out: bytes, err: bytes, work: Path) -> str:
        found = [name for name, data in (("stdout", out), ("stderr", err)) if marker.encode() in data]
        return f"{marker[:12]!r} reached {' and '.join(found)}" if found else ""
    return check


def any_leak(markers: list) -> Callable:
    def check(out, err, work):
        return "; ".join(filter(None, (leaks(marker)(out, err, work) for marker in markers)))
    return check


def cases(work: Path) -> list[Case]:
    """Every hostile input listed in issue 15, in its order."""
    long = "/tmp/" + "a" * 5000
    big_rows = jsonl([{**ROW, "id": f"row-{number}"} for number in range(200_000)])
    result = []
    add = result.append

    # -- hangs and signals
    for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        add(Case("signals", f"{name} to the group during batch --jobs 2 (200,000 rows)", ["batch", "rows.jsonl", "--jobs", "2"],
                 setup=lambda w: write(w / "rows.jsonl", big_rows), signal_after=(sig, "output"),
                 check=lambda out, err, w: "" if out.endswith(b"\n") or not out else "stdout ends mid-line"))

    # -- tracebacks: scalars handed to PyYAML's constructors
    for value in ("0x_", "0b_", "!!int abc", "!!float 1e", "1" * 4400):
        shown = value if len(value) < 12 else "a 4,400-digit integer"
        add(Case("scalars", f"answers file amount: {shown}", ["check", "--answers", "answers.yaml"],
                 setup=lambda w, v=value: write(w / "answers.yaml", f"charge_type: topup\namount: {v}\nago: 3h\ncause: unused-credits\n")))
        add(Case("scalars", f"user config rules.yaml with {shown}, plain check", CHECK,
                 setup=lambda w, v=value: write(w / "home" / ".config" / "refundadvisor" / "rules.yaml",
                                                BASE_RULES.replace("value: 10", f"value: {v}"))))
    add(Case("scalars", "rule file returns: []", ["rules", "validate", "r.yaml"],
             setup=lambda w: write(w / "r.yaml", BASE_RULES.replace("tests:\n", "refund_estimates:\n  - {id: e, returns: [], note: x}\ntests:\n"))))
    add(Case("scalars", "rule file outcome: {any: []}", ["rules", "validate", "r.yaml"],
             setup=lambda w: write(w / "r.yaml", BASE_RULES.replace("outcome: good\ntests", "outcome: {any: []}\ntests"))))

    # -- dates at the edges
    add(Case("dates", "check --now 0001-01-01", [*CHECK[:-2], "--now", "0001-01-01"]))
    add(Case("dates", "check --now 9999-12-31 (a deadline overflows)", [*CHECK[:-2], "--now", "9999-12-31"]))
    add(Case("dates", "check --now 0001-01-02 --ago 5w (below year 1)", ["check", "--charge-type", "topup", "--amount", "5",
                                                                      "--ago", "5w", "--cause", "unused-credits", "--now", "0001-01-02"]))
    add(Case("dates", "history add --now 9999-12-31", ["history", "add", "--cause", "overuse", "--outcome", "denied", "--now", "9999-12-31"]))
    add(Case("dates", "history add --asked-at 0001-01-01T00:00+05:00",
             ["history", "add", "--cause", "overuse", "--outcome", "denied", "--asked-at", "0001-01-01T00:00+05:00"]))
    add(Case("dates", "history view --now 0001-01-01", ["history", "--now", "0001-01-01"]))
    add(Case("dates", "history view --now 9999-12-31 with an entry", ["history", "--now", "9999-12-31"],
             setup=lambda w: _history_with(w, ["--cause", "overuse", "--outcome", "denied"])))

    # -- paths longer than the system allows
    add(Case("paths", "check --history with a 5,000-character path", [*CHECK, "--history", long + "/h.db"]))
    add(Case("paths", "history with a 5,000-character --history", ["history", "--history", long + "/h.db"]))
    add(Case("paths", "check with a 5,000-character REFUNDADVISOR_HOME", CHECK, env={"REFUNDADVISOR_HOME": long}))
    add(Case("paths", "check with a 5,000-character XDG_CONFIG_HOME", CHECK, env={"XDG_CONFIG_HOME": long}))

    # -- nesting
    nested = "[" * 1000 + "]" * 1000 + "\n"
    add(Case("nesting", "batch: one row of 1,000 nested brackets among 3,000 rows", ["batch", "rows.jsonl"],
             setup=lambda w: write(w / "rows.jsonl", jsonl([ROW] * 1500) + nested + jsonl([ROW] * 1500)),
             check=lambda out, err, w: "" if out.count(b"\n") == 3001 else f"{lines(out)} results for 3,001 rows"))
    add(Case("nesting", "history import: a row of 1,000 nested brackets", ["history", "import", "backup.jsonl"],
             setup=lambda w: write(w / "backup.jsonl", nested)))

    # -- output
    add(Case("output", "check > /dev/full", CHECK, stdout="/dev/full"))
    add(Case("output", "check with stdout closed", CHECK, stdout="closed"))
    add(Case("output", "check with PYTHONIOENCODING=ascii", CHECK, env={"PYTHONIOENCODING": "ascii"}))
    add(Case("output", "check with LC_ALL=C PYTHONCOERCECLOCALE=0", CHECK,
             env={"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}))
    add(Case("output", "history import of a ragged CSV text file", ["history", "import", "notes.txt"],
             setup=lambda w: write(w / "notes.txt", "some notes, with commas\nand a line\nthree,fields,here,and more\n")))

    # -- secrets
    add(Case("secrets", "unquoted --summary with a key (usage error)", ["draft", *CHECK[1:-2], "--summary", "my", "key", KEY],
             check=leaks(KEY)))
    add(Case("secrets", "a key given to --jobs", ["batch", "-", "--jobs", KEY], stdin=b"", check=leaks(KEY)))
    add(Case("secrets", "a key given as an ID", ["history", "update", KEY, "--outcome", "denied"], check=leaks(KEY)))
    for label, text in (("upper-case", KEY.upper()), ("URL-encoded", KEY.replace("-", "%2D")),
                        ("glued to a word", "Bearer" + KEY), ("over two lines", KEY[:30] + "\n" + KEY[30:])):
        add(Case("secrets", f"an {label} key in --summary", ["draft", *CHECK[1:-2], "--summary", f"leaked {text} here"],
                 check=leaks(text.replace("\n", "")[12:40] if label != "over two lines" else KEY[12:30])))
    add(Case("secrets", "a key as a batch row id (jsonl and csv)", ["batch", "rows.jsonl", "--format", "csv"],
             setup=lambda w: write(w / "rows.jsonl", jsonl([{**ROW, "id": KEY}, {**ROW, "id": "x", "amount": KEY}])),
             check=leaks(KEY)))
    add(Case("secrets", "a key as a batch row's field name", ["batch", "rows.jsonl"],
             setup=lambda w: write(w / "rows.jsonl", jsonl([{**ROW, KEY: 1}])), check=leaks(KEY)))
    add(Case("secrets", "history import notes with a key, then list", ["history", "list"],
             setup=lambda w: _imported(w, [{"note": f"my key {KEY}"}]), check=leaks(KEY)))
    add(Case("secrets", "history import notes with a key, then export", ["history", "export"],
             setup=lambda w: _imported(w, [{"note": f"my key {KEY}"}]), check=leaks(KEY)))

    # -- injection
    add(Case("injection", "rule file title with ESC and OSC 8, check", ["check", "--rules", "evil.yaml", "--amount", "5", "--fact", "kind=a"],
             setup=lambda w: write(w / "evil.yaml", _evil_title()), check=any_leak(["\x1b[2J", "\x1b]8;"])))
    add(Case("injection", "draft passes ESC and BEL from --summary", ["draft", *CHECK[1:-2], "--summary", "a\x1b[2Jb\x07c"],
             check=any_leak(["\x1b[2J", "\x07"])))
    add(Case("injection", "history note as Rich markup [link=...]", ["history", "list"],
             setup=lambda w: _history_with(w, ["--cause", "overuse", "--outcome", "denied", "--note", "[link=https://evil.example]x[/link]"]),
             env={"FORCE_COLOR": "1", "COLUMNS": "200"}, check=leaks("\x1b]8;")))
    add(Case("injection", "batch --format csv with =HYPERLINK ids", ["batch", "rows.jsonl", "--format", "csv"],
             setup=lambda w: write(w / "rows.jsonl", jsonl([{**ROW, "id": '=HYPERLINK("http://x","y")'}, {**ROW, "id": "=cmd|' /C calc'!A0"}])),
             check=any_leak([",=HYPERLINK", ",=cmd", "\n=HYPERLINK", "\n=cmd"])))
    add(Case("injection", "history export --format csv with a formula note", ["history", "export", "--format", "csv"],
             setup=lambda w: _history_with(w, ["--cause", "overuse", "--outcome", "denied", "--note", "=cmd|' /C calc'!A0"]),
             check=any_leak([",=cmd", "\n=cmd"])))
    add(Case("injection", "anchor on a mapping key reused as a value", ["rules", "validate", "r.yaml"],
             setup=lambda w: write(w / "r.yaml", BASE_RULES.replace("  kind:\n", "  &c kind:\n").replace("{fact: kind, eq: a}", "{fact: *c, eq: a}")),
             check=lambda out, err, w: "" if b"alias" in out + err else "the aliased key was accepted"))

    # -- nothing lost
    add(Case("lost", "draft --output over a previous file on a full disk (RLIMIT_FSIZE 512 B)",
             ["draft", *CHECK[1:], "--summary", "x" * 2000, "--output", "previous.txt"],
             setup=lambda w: write(w / "previous.txt", "old line\n" * 300), fsize=512,
             check=lambda out, err, w: "" if (w / "previous.txt").read_text(errors="replace") == "old line\n" * 300
             else f"the previous file now has {(w / 'previous.txt').read_text(errors='replace').count(chr(10))} of 300 lines"))
    add(Case("lost", "history export --format csv of a note with a lone CR, imported back", ["history", "import", "back.csv"],
             setup=lambda w: _csv_round_trip(w), check=lambda out, err, w: "" if _notes(w) == ["a\rb", "a\rb"] or
             _notes(w) == ["a\rb"] else f"notes now {_notes(w)!r}"))
    add(Case("lost", "UTF-8 BOM on stdin: batch -", ["batch", "-"], stdin=("\ufeff" + jsonl([ROW, ROW])).encode(),
             check=lambda out, err, w: "" if out.count(b"\n") == 2 else f"{lines(out)} results for 2 rows"))
    add(Case("lost", "UTF-8 BOM on stdin: history import - of a one-line backup", ["history", "import", "-"],
             stdin=("\ufeff" + jsonl([{"asked_at": "2026-10-01T00:00:00Z", "platform": "openrouter", "cause": "overuse",
                                       "outcome": "denied"}])).encode(),
             check=lambda out, err, w: "" if len(_notes(w)) == 1 else f"{len(_notes(w))} entries imported"))
    add(Case("lost", "a lone CR inside a CSV row (line numbers)", ["batch", "rows.csv"],
             setup=lambda w: write(w / "rows.csv", "charge_type,amount,ago,cause\ntopup,5,3h,unused-credits\rx\ntopup,5,3h,x\n"),
             check=lambda out, err, w: "the row on line 3 is reported at line 4" if b'"line": 4' in out or b"3, 4" in err else ""))
    add(Case("lost", "a CSV with CR line endings", ["batch", "rows.csv"],
             setup=lambda w: write(w / "rows.csv", "charge_type,amount,ago,cause\r" + "topup,5,3h,unused-credits\r" * 3000),
             check=lambda out, err, w: "" if out.count(b"\n") == 3000 else f"{lines(out)} results for 3,000 rows"))
    add(Case("lost", "a history at schema 1 is migrated to WAL", ["history", "list"], setup=_schema_1,
             check=lambda out, err, w: "" if _journal(w) == "wal" else f"journal mode {_journal(w)}"))
    add(Case("lost", "a read-only history folder, plain check", CHECK, setup=_read_only_history))
    add(Case("lost", "a FIFO as the history file, plain check", CHECK, setup=lambda w: _fifo(w / "home" / "data" / "history.db")))
    add(Case("lost", "a FIFO as a cache entry, plain check", CHECK, setup=_fifo_cache_entry, env={"REFUNDADVISOR_NO_CACHE": "", "XDG_CACHE_HOME": "home/cache"}))
    add(Case("lost", "a FIFO as the cache key, plain check", CHECK, setup=lambda w: (_fifo(w / "home" / "data" / "cache.key.fifo"),
                              os.replace(w / "home" / "data" / "cache.key.fifo", w / "home" / "data" / "cache.key")),
             env={"REFUNDADVISOR_NO_CACHE": "", "XDG_CACHE_HOME": "home/cache"}))
    add(Case("lost", "a FIFO as the rule file", ["rules", "validate", "fifo.yaml"], setup=lambda w: _fifo(w / "fifo.yaml")))
    add(Case("lost", "a FIFO as the answers file", ["check", "--answers", "fifo.yaml"], setup=lambda w: _fifo(w / "fifo.yaml")))

    # -- bounded cost
    for size_kb in (77, 154, 2000):
        add(Case("cost", f"rule file of unknown facts, {size_kb} KB (quadratic validation)", ["rules", "validate", "r.yaml"],
                 setup=lambda w, s=size_kb: write(w / "r.yaml", _unknown_facts(s * 1000))))
    add(Case("cost", "the same 154 KB file as the user's rules.yaml, plain check", CHECK,
             setup=lambda w: write(w / "home" / ".config" / "refundadvisor" / "rules.yaml", _unknown_facts(154_000))))
    add(Case("cost", "answers file of one 1 MB flow list", ["check", "--answers", "a.yaml"],
             setup=lambda w: write(w / "a.yaml", "amount: [" + "1," * 500_000 + "1]\n")))
    add(Case("cost", "rule file of one 2 MB flow list", ["rules", "validate", "r.yaml"],
             setup=lambda w: write(w / "r.yaml", "[" + "1," * 1_000_000 + "1]\n")))
    add(Case("cost", "history import /dev/zero", ["history", "import", "/dev/zero"]))
    add(Case("cost", "history import - < /dev/zero", ["history", "import", "-"], stdin="/dev/zero"))
    add(Case("cost", "batch /dev/zero", ["batch", "/dev/zero"]))
    add(Case("cost", "batch: a single 200 MB row", ["batch", "big.jsonl"], setup=_huge_row,
             check=lambda out, err, w: "" if len(out) + len(err) < 100_000 else f"{(len(out) + len(err)) // 1000} KB echoed"))

    # -- found by the fuzzers and property tests on this branch (not in the issue's list)
    add(Case("found", "check --amount 3E-3000000000 (written out: 3 billion zeros)",
             ["check", "--charge-type", "topup", "--amount", "3E-3000000000", "--ago", "3h", "--cause", "unused-credits"]))
    add(Case("found", "history add --amount 3E-3000000000", ["history", "add", "--cause", "overuse", "--outcome", "denied",
                                                             "--amount", "3E-3000000000"]))
    add(Case("found", "evidence log /dev/zero", ["evidence", "log", "/dev/zero"]))
    # A named pipe given as INPUT is read as `cat` reads it: the command waits for a writer (that is
    # how `batch <(...)` works). Measured with a writer that appears 0.3 s later.
    add(Case("found", "evidence log of a FIFO (a writer after 0.3 s)", ["evidence", "log", "fifo"],
             setup=lambda w: _fifo_with_writer(w / "fifo", "")))
    add(Case("found", "history import of a FIFO (a writer after 0.3 s)", ["history", "import", "fifo"],
             setup=lambda w: _fifo_with_writer(w / "fifo", "")))
    add(Case("found", "batch of a FIFO (a writer after 0.3 s)", ["batch", "fifo"],
             setup=lambda w: _fifo_with_writer(w / "fifo", jsonl([ROW]))))
    add(Case("found", "history import of a YAML file (rules.yaml)", ["history", "import", str(ROOT / "rules.yaml")]))
    add(Case("found", "batch /proc/self/mem", ["batch", "/proc/self/mem"]))
    return result


# -- setups -----------------------------------------------------------------------------------------

def _run_quietly(work: Path, args: list, stdin: bytes = b"") -> None:
    subprocess.run([command_path("hostile.py"), *args], cwd=work, env=_env(work), input=stdin, capture_output=True, timeout=60)


def _history_with(work: Path, args: list) -> None:
    _run_quietly(work, ["history", "add", "--no-input", *args])


def _imported(work: Path, notes: list) -> None:
    rows = [{"asked_at": f"2026-10-{1 + index % 28:02d}T00:00:00Z", "platform": "openrouter", "cause": "overuse",
             "outcome": "denied", **extra} for index, extra in enumerate(notes)]
    write(work / "seed.jsonl", jsonl(rows))
    _run_quietly(work, ["history", "import", "seed.jsonl"])


def _csv_round_trip(work: Path) -> None:
    _imported(work, [{"note": "a\rb"}])
    _run_quietly(work, ["history", "export", "--format", "csv", "--output", "back.csv"])
    (work / "home" / "data" / "history.db").unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        (work / "home" / "data" / f"history.db{suffix}").unlink(missing_ok=True)


def _notes(work: Path) -> list:
    try:
        with sqlite3.connect(work / "home" / "data" / "history.db") as connection:
            return [row[0] for row in connection.execute("SELECT note FROM requests")]
    except sqlite3.Error:
        return []


def _journal(work: Path) -> str:
    try:
        with sqlite3.connect(work / "home" / "data" / "history.db") as connection:
            return connection.execute("PRAGMA journal_mode").fetchone()[0]
    except sqlite3.Error as error:
        return f"unreadable ({error})"


def _schema_1(work: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from refundadvisor import history as history_module

    path = work / "home" / "data" / "history.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    for statement in history_module.MIGRATIONS[1]:
        connection.execute(statement)
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()


def _read_only_history(work: Path) -> None:
    _history_with(work, ["--cause", "overuse", "--outcome", "denied"])
    folder = work / "home" / "data"
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)


def _fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def _fifo_with_writer(path: Path, text: str) -> None:
    """A named pipe, and a writer that opens it 0.3 s after the run starts, writes and closes."""
    _fifo(path)

    def feed() -> None:
        time.sleep(0.3)
        with open(path, "w", encoding="utf-8") as pipe:
            pipe.write(text)

    threading.Thread(target=feed, daemon=True).start()


def _fifo_cache_entry(work: Path) -> None:
    subprocess.run([command_path("hostile.py"), *CHECK], cwd=work, env={**_env(work), "REFUNDADVISOR_NO_CACHE": ""},
                   capture_output=True, timeout=60)
    for entry in (work / "home" / "cache" / "refundadvisor" / "rules").glob("*.json"):
        entry.unlink()
        os.mkfifo(entry)


def _evil_title() -> str:
    return BASE_RULES.replace("title: Demo\n", 'title: "Demo\\e[2J\\e]8;;https://evil.example\\aclick here\\e]8;;\\a"\n')


def _unknown_facts(size: int) -> str:
    facts, rules, index = [], [], 0
    text = BASE_RULES
    while len(text) + sum(map(len, facts)) + sum(map(len, rules)) < size:
        facts.append(f"  fact_{index}: {{type: number, question: q}}\n")
        rules.append(f"  - {{id: r{index}, why: w, source: doc, when: {{fact: fakt_{index}, gt: 1}}, score: 1}}\n")
        index += 1
    return text.replace("facts:\n", "facts:\n" + "".join(facts)).replace("rules:\n", "rules:\n" + "".join(rules))


def _huge_row(work: Path) -> None:
    with open(work / "big.jsonl", "w") as handle:
        handle.write('{"charge_type": "topup", "amount": 5, "ago": "3h", "cause": "unused-credits", "note": "')
        chunk = "x" * (1024 * 1024)
        for _ in range(200):
            handle.write(chunk)
        handle.write('"}\n')


# -- running ----------------------------------------------------------------------------------------

def _env(work: Path) -> dict:
    home = work / "home"
    env = {key: value for key, value in os.environ.items() if not key.startswith("REFUNDADVISOR_")}
    for name in ("OPENROUTER_API_KEY", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "PYTHONIOENCODING", "LC_ALL"):
        env.pop(name, None)
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / "cache"),
                "XDG_DATA_HOME": str(home / "share"), "REFUNDADVISOR_HOME": str(home / "data"), "TZ": "UTC",
                "REFUNDADVISOR_NO_CACHE": "1", "REFUNDADVISOR_NO_INPUT": "1", "BROWSER": "true"})
    return env


TIME = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
WARM: dict = {}  # the cache directory and its signing key, warmed once and shared by every run


def warm_cache() -> None:
    """Compile the bundled rules once into a shared cache, as a user's machine has them: a run
    then measures the hostile input, not the first compile of the bundled rules."""
    folder = Path(tempfile.mkdtemp(prefix="refundadvisor-hostile-cache-"))
    env = {**_env(folder), "XDG_CACHE_HOME": str(folder / "cache"), "REFUNDADVISOR_HOME": str(folder / "data")}
    env.pop("REFUNDADVISOR_NO_CACHE")
    for platform in ("openrouter", "openai", "anthropic"):
        subprocess.run([command_path("hostile.py"), *CHECK, "--platform", platform, "--no-history"], env=env,
                       capture_output=True, timeout=120)
    WARM.update(cache=folder / "cache", key=folder / "data" / "cache.key", folder=folder)


def run(case: Case, timeout: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="refundadvisor-hostile-"))
    (work / "home").mkdir()
    env = _env(work)
    if WARM and "REFUNDADVISOR_NO_CACHE" not in case.env:
        env.pop("REFUNDADVISOR_NO_CACHE")
        env["XDG_CACHE_HOME"] = str(WARM["cache"])
        (work / "home" / "data").mkdir(parents=True)
        shutil.copy(WARM["key"], work / "home" / "data" / "cache.key")
    env.update(case.env)
    env = {key: str(work / value) if value.startswith("home/") else value for key, value in env.items() if value != ""}
    if case.setup:
        case.setup(work)
    stdin_file = None
    if isinstance(case.stdin, bytes):
        stdin_file = work / "stdin"
        stdin_file.write_bytes(case.stdin)
        stdin_file = str(stdin_file)
    elif isinstance(case.stdin, str):
        stdin_file = case.stdin
    out_path, err_path = work / "stdout", work / "stderr"
    stdin = open(stdin_file or os.devnull, "rb")
    if case.stdout == "pipe":
        stdout = open(out_path, "wb")
    elif case.stdout == "closed":
        stdout = None
    else:
        stdout = open(case.stdout, "wb")
    stderr = open(err_path, "wb")

    def prepare():
        os.setpgid(0, 0)
        if case.stdout == "closed":
            os.close(1)
        import resource

        # a runaway input must not take the shared machine with it: past this, MemoryError (a row
        # of the table), not the OOM killer
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
        if case.fsize:
            resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, case.fsize))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    measured = work / "rusage"
    wrapper = [TIME, "-q", "-f", "%M", "-o", str(measured)] if TIME else []
    started = time.monotonic()
    process = subprocess.Popen([*wrapper, command_path("hostile.py"), *case.args], cwd=work, env=env, stdin=stdin,
                               stdout=stdout if stdout is not None else subprocess.DEVNULL, stderr=stderr,
                               preexec_fn=prepare)
    signalled = None
    status, usage, timed_out = None, None, False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        elapsed = time.monotonic() - started
        if case.signal_after and signalled is None and out_path.exists() and out_path.stat().st_size > 100_000:
            signalled = time.monotonic()  # well into the output: results written, workers busy
            os.killpg(process.pid, case.signal_after[0])
        if elapsed > timeout:
            timed_out = True
            _kill_command(process.pid)  # the command first, so that time(1) still reports its peak memory
            for _ in range(200):
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                time.sleep(0.01)
            else:
                os.killpg(process.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.005)
    ended = time.monotonic()
    process.returncode = os.waitstatus_to_exitcode(status)
    try:
        os.killpg(process.pid, signal.SIGKILL)  # workers left behind
    except (ProcessLookupError, PermissionError):
        pass
    for handle in (stdin, stdout, stderr):
        if handle is not None:
            handle.close()
    out = out_path.read_bytes()[:50_000_000] if out_path.exists() else b""
    err = err_path.read_bytes()[:5_000_000]
    seconds = ended - (signalled or started)  # for a signal: how long it took to stop
    mb = usage.ru_maxrss / 1024
    if TIME and measured.exists():  # the command's own peak, not the forked copy of this script
        try:
            mb = int(measured.read_text().split()[-1]) / 1024
        except (ValueError, IndexError):
            pass
    notes = []
    if timed_out:
        notes.append("HANG: killed after the timeout")
    traceback = b"Traceback" in err
    code = process.returncode
    shown_code = code
    if case.signal_after and code == -case.signal_after[0]:
        shown_code = f"{code} ({signal.Signals(-code).name}'s default action)"  # ended by the signal: not a crash
    elif code not in DOCUMENTED_EXITS and not timed_out:
        notes.append(f"undocumented exit {code}")
    if case.check:
        try:
            problem = case.check(out, err, work)
        except Exception as error:  # noqa: BLE001 - a check that cannot run is itself a finding
            problem = f"check failed: {error}"
        if problem:
            notes.append(problem)
    if not timed_out and (seconds > LIMIT_SECONDS or mb > LIMIT_MB):
        notes.append("over 2 s / 200 MB")
    first_error = next((line for line in err.decode("utf-8", "replace").splitlines() if line.strip()), "")
    _cleanup(work)
    return {"section": case.section, "input": case.name, "code": "timeout" if timed_out else shown_code, "seconds": seconds,
            "mb": mb, "traceback": traceback, "notes": "; ".join(notes), "stderr": first_error[:150]}


def _kill_command(pid: int) -> None:
    """SIGKILL the processes time(1) started (or the process itself when there is no wrapper)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in (children if TIME and children else [str(pid)]):
        try:
            os.kill(int(child), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError):
            pass


def _cleanup(work: Path) -> None:
    for path in work.rglob("*"):
        try:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        except OSError:
            pass
    shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a run is killed and reported as a hang")
    parser.add_argument("--only", default="", help="run only the inputs whose name or section contains this")
    parser.add_argument("--stderr", action="store_true", help="add the first line of stderr to each row")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="refundadvisor-hostile-list-"))
    warm_cache()
    chosen = [case for case in cases(scratch) if options.only.lower() in (case.name + case.section).lower()]
    rows = []
    print(f"| input | exit | s | MB | traceback | notes |{' first stderr line |' if options.stderr else ''}")
    print(f"|---|---|---|---|---|---|{'---|' if options.stderr else ''}")
    for case in chosen:
        row = run(case, options.timeout)
        rows.append(row)
        extra = f" {row['stderr'].replace('|', '/')} |" if options.stderr else ""
        print(f"| {row['section']}: {row['input']} | {row['code']} | {row['seconds']:.2f} | {row['mb']:.0f} | "
              f"{'yes' if row['traceback'] else 'no'} | {row['notes']} |{extra}", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(WARM["folder"], ignore_errors=True)
    broken = [row for row in rows if row["traceback"] or row["notes"]]
    if not rows:
        print("no input matches --only")
        return 2
    print(f"\n{len(rows)} inputs, {len(broken)} breaking a promise; worst {max(r['seconds'] for r in rows):.2f} s, "
          f"{max(r['mb'] for r in rows):.0f} MB")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
