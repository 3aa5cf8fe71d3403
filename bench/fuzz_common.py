"""What the fuzzers share: a sealed home, hostile values, and a runner that runs the real command
line once per input in a forked process with a time limit.

Each input runs as `refundadvisor ARGS` would: the console script's own ``main()``, in a child
forked from a process that has already imported the package (a fresh interpreter per input would
cost ~0.3 s each), with stdin, stdout and stderr on files, in its own process group (killed whole
on a timeout), under a memory limit. An input fails when stderr holds "Traceback", the exit code
is outside the documented set, the child dies of a signal, or it does not finish in time.
"""

from __future__ import annotations

import io
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED_EXITS = {0, 1, 2, 3, 130}  # refundadvisor --help: ok, data error, usage, --fail-below, interrupted
MEMORY_LIMIT = 2 * 1024 ** 3  # a child that needs more has an unbounded cost: it fails with MemoryError
OUTPUT_LIMIT = 64 * 1024 ** 2  # stdout beyond this is cut (RLIMIT_FSIZE): a flood shows as a failure

KEYS = ["sk-or-v1-" + "0123456789abcdef" * 4, "sk-proj-" + "A1b2C3d4" * 6, "sk-ant-api03-" + "x9Y8z7W6" * 10,
        "SK-OR-V1-" + "ABCDEF0123456789" * 4, "sk-or-v1%2D" + "0123456789abcdef" * 4, "Bearersk-or-v1-" + "ab12" * 16,
        "sk-or-v1-0123456789abcdef01234567\n89abcdef0123456789abcdef0123456789abcdef"]
ESCAPES = ["\x1b[2J\x1b[H", "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07", "\x07\x08\x7f", "\x9b31m", "\r\x1b[1A",
           "[link=https://evil.example]x[/link]", "[bold red]x", "=HYPERLINK(\"http://x\")", "=cmd|' /C calc'!A0",
           "\u202eevil\u202c", "\ufeffbom"]
NUMBERS = ["9" * 5000, "1" * 4400, "1e999999", "-1e999999", "nan", "inf", "-0", "0x_", "0b_", "1_000", "12,50", "1:20",
           "-5", "0", "99999999999999999999", "1e-400", "0.000000001", "$", "$5", "5$", "٣", "½", "１２"]
DATES = ["0001-01-01", "9999-12-31", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "1900-01-01", "1899-12-31",
         "8999-12-31T23:59:59Z", "2026-02-30", "2024-02-29", "2026-11-30T12:00:00Z", "2026-11-29", "12:00", "yesterday",
         "2026-13-01", "20261129", "2026-11-29T25:00", "2026-11-29T14:30:00+99:00", "1970-01-01T00:00:00Z"]
DURATIONS = ["999999999w", "99999999d", "0m", "1d12h", "-3d", "3", "3y", "1e9h", "0.5h", "5h" * 200, "9" * 400 + "m"]
TEXT = ["", " ", "-", "--", "-h", "--help", "a" * 100_000, "é" * 5000, "\x00", "a\x00b", "\udcff\udcfe", "\t\n\r",
        "None", "null", "true", "[]", "{}", "{a: 1}", "'", '"', "\\", "%s%n", "${HOME}", "$(touch /tmp/pwned)", "*",
        "../../../../etc/passwd", "x" * 300]


def hostile_paths(workdir: Path) -> list[str]:
    """Paths that are not an ordinary readable file (and a few that are)."""
    fifo = workdir / "fifo"
    if not fifo.exists() and hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
    folder = workdir / "folder"
    folder.mkdir(exist_ok=True)
    unreadable = workdir / "unreadable.yaml"
    unreadable.write_text("a: 1\n")
    unreadable.chmod(0)
    loop = workdir / "loop.yaml"
    if not os.path.lexists(loop):
        os.symlink(loop, loop)
    # copies of real files, never the checkout's own: a vector may well write to them (--output, --ics)
    copies = []
    for source in (ROOT / "rules.yaml", ROOT / "platforms" / "openrouter.yaml", ROOT / "README.md"):
        target = workdir / "copies" / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        copies.append(str(target))
    return [str(fifo), str(folder), str(unreadable), str(loop), "/dev/null", "/dev/zero", "/dev/full", "/", "/proc/self/mem",
            str(workdir / "missing.yaml"), "/tmp/" + "a" * 5000, str(workdir / ("b" * 300)), str(workdir / "new-file.out"),
            *copies]


def hostile_value(rng: random.Random, paths: list[str]) -> str:
    pool = rng.choice([KEYS, ESCAPES, NUMBERS, DATES, DURATIONS, TEXT, paths])
    value = rng.choice(pool)
    roll = rng.random()
    if roll < 0.1:  # glue two together
        value = value + rng.choice([KEYS, ESCAPES, TEXT, NUMBERS])[0]
    elif roll < 0.15:
        value = value * rng.randint(2, 50)
    return value


def sealed_env(workdir: Path, cache: bool = True) -> dict[str, str]:
    """A temporary home with no user configuration, the network unreachable and no browser."""
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("REFUNDADVISOR_")}
    for name in ("OPENROUTER_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        env.pop(name, None)
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"), "TZ": "UTC", "TERM": "dumb", "BROWSER": "true",
        # every platform look-up goes to a closed port on this machine: refused at once, nothing leaves
        "REFUNDADVISOR_API_URL": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
        "PYTHONIOENCODING": "utf-8",
    })
    if not cache:
        env["REFUNDADVISOR_NO_CACHE"] = "1"
    return env


@dataclass
class Outcome:
    args: list
    code: Optional[int]  # None: killed after the timeout
    seconds: float
    stderr: str
    problem: str = ""  # "" when the run kept every promise
    env: dict = field(default_factory=dict)  # what the vector set in the environment


@dataclass
class Runner:
    """Runs argument vectors through the console script, ``jobs`` at a time, each in a fork."""

    env: dict
    timeout: float = 10.0
    jobs: int = 2
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="refundadvisor-fuzz-")))

    def __post_init__(self):
        from refundadvisor import cli  # imported once, before forking: each child starts warm

        (self.workdir / "cwd").mkdir(parents=True, exist_ok=True)

        self._cli = cli

    def run_all(self, vectors: list, on_result=None) -> list[Outcome]:
        """Run every (args, stdin_path) or (args, stdin_path, env) vector; returns the outcomes in
        the same order."""
        results: list[Optional[Outcome]] = [None] * len(vectors)
        running: dict[int, tuple] = {}
        pending = list(enumerate(vectors))
        while pending or running:
            while pending and len(running) < self.jobs:
                index, vector = pending.pop(0)
                args, stdin_path, extra = (*vector, {})[:3]
                err = self.workdir / f"err-{index}"
                pid = self._start(args, stdin_path, err, extra)
                running[pid] = (index, args, err, time.monotonic(), extra)
            time.sleep(0.002)
            for pid, (index, args, err, started, extra) in list(running.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                elapsed = time.monotonic() - started
                if done == 0 and elapsed < self.timeout:
                    continue
                if done == 0:  # a hang: kill the whole group (batch workers included)
                    _kill_group(pid)
                    os.waitpid(pid, 0)
                    code = None
                else:
                    _kill_group(pid)  # anything the command left behind
                    code = os.waitstatus_to_exitcode(status)
                del running[pid]
                stderr = _read(err)
                outcome = Outcome(list(args), code, elapsed, stderr, _judge(code, stderr, self.timeout, args), extra)
                results[index] = outcome
                if on_result:
                    on_result(index, outcome)
        return results  # type: ignore[return-value]

    def _start(self, args: list, stdin_path: Optional[str], err: Path, extra: dict) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        try:  # the child: never returns
            os.setpgid(0, 0)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
            resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
            stdin = os.open(stdin_path or os.devnull, os.O_RDONLY | os.O_NONBLOCK)
            os.set_blocking(stdin, True)
            out = os.open(self.workdir / f"out-{os.getpid()}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            error = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            for source, target in ((stdin, 0), (out, 1), (error, 2)):
                os.dup2(source, target)
            # relative paths in a vector (an --output, a --history) land in the scratch folder
            os.chdir(self.workdir / "cwd")
            os.environ.clear()
            os.environ.update(self.env)
            os.environ.update(extra)
            time.tzset()
            sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="surrogateescape")
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="strict")
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                          line_buffering=True)
            sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
            sys.argv = ["refundadvisor", *args]
            code = 0
            try:
                self._cli.main()
            except SystemExit as stop:
                if isinstance(stop.code, str):
                    sys.stderr.write(stop.code + "\n")
                    code = 1
                else:
                    code = stop.code or 0
            except BaseException:  # noqa: BLE001 - exactly what the interpreter would print
                traceback.print_exc()
                code = 1
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - a full disk or closed pipe at exit, as the interpreter
                    pass
            os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)
        except BaseException:  # noqa: BLE001
            os._exit(99)  # the harness itself failed: reported as an undocumented exit


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read(path: Path, limit: int = 20_000) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit)
        os.unlink(path)
    except OSError:
        return ""
    for name in path.parent.glob("out-*"):
        try:
            name.unlink()
        except OSError:
            pass
    return data.decode("utf-8", "replace")


# Options whose value is a path the program opens itself: a named pipe there must never block.
PATH_OPTIONS = {"--output", "-o", "--ics", "--history", "--rules", "--answers", "--generations", "--ids-file"}


def waits_on_input_pipe(args) -> bool:
    """Whether the vector names the work folder's named pipe as the INPUT file (the last argument,
    not an option's value): the command then waits for a writer, as `cat fifo` does, which is how
    `refundadvisor batch <(...)` works (README, "Many charges"). Not a hang of refundadvisor's."""
    args = [str(arg) for arg in args]
    return len(args) >= 2 and args[-1].endswith("/fifo") and args[-2] not in PATH_OPTIONS


def _judge(code: Optional[int], stderr: str, timeout: float, args=()) -> str:
    if code is None:
        if waits_on_input_pipe(args):
            return ""
        return f"hang (no exit within {timeout:g} s)"
    if "Traceback" in stderr:
        return "traceback: " + last_line(stderr)
    if code < 0:
        return f"killed by signal {-code}"
    if code not in DOCUMENTED_EXITS:
        return f"undocumented exit code {code}"
    return ""


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def where_it_broke(stderr: str) -> str:
    """The innermost package frame of a traceback and its exception: one failure class."""
    frames = [line.strip() for line in stderr.splitlines() if line.strip().startswith('File "') and "refundadvisor" in line]
    exception = last_line(stderr).split(":")[0]
    return f"{frames[-1] if frames else '?'} -> {exception}"


def command_words(args: list) -> str:
    """The command a vector ran (its leading words), e.g. 'history import'."""
    words = []
    for arg in args:
        if arg.startswith("-") or len(words) == 2 or not arg.isalpha():
            break
        words.append(arg)
    return " ".join(words) or "(none)"


def shown_args(args: list) -> str:
    text = " ".join(repr(arg)[:60] for arg in args)
    return text[:400]


def summary(title: str, seed: int, outcomes: list[Outcome], seconds: float) -> tuple[str, int]:
    """A report: counts, the seed, and each failure class with one example."""
    failed = [outcome for outcome in outcomes if outcome.problem]
    classes: dict[str, list[Outcome]] = {}
    for outcome in failed:
        key = (where_it_broke(outcome.stderr) if outcome.problem.startswith("traceback")
               else f"{outcome.problem} in `{command_words(outcome.args)}`")
        classes.setdefault(key, []).append(outcome)
    codes: dict = {}
    for outcome in outcomes:
        codes[outcome.code] = codes.get(outcome.code, 0) + 1
    waited = sum(1 for outcome in outcomes if outcome.code is None and not outcome.problem)
    lines = [f"{title}: {len(outcomes)} runs, seed {seed}, {seconds:.0f} s; exit codes "
             + ", ".join(f"{code}: {count}" for code, count in sorted(codes.items(), key=lambda item: str(item[0])))
             + f" (None: stopped at the timeout; {waited} of them waited, as documented, on a named pipe given"
             + f" as the input file); {len(failed)} failed in {len(classes)} classes"]
    for key, members in sorted(classes.items(), key=lambda item: -len(item[1])):
        example = members[0]
        env = " ".join(f"{name}={value[:40]!r}" for name, value in example.env.items())
        lines.append(f"- {len(members)} x {key}\n    e.g. {env + ' ' if env else ''}refundadvisor {shown_args(example.args)}"
                     f"\n    {last_line(example.stderr)[:160]}")
    return "\n".join(lines), len(failed)
