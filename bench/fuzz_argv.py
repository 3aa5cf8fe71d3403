"""Random command lines over every command and flag: no traceback, no hang, only documented exits.

    python bench/fuzz_argv.py [--count 3000] [--seed N] [--timeout 10] [--jobs 2] [--show-all]

Each vector is a command (found by walking the app, so new commands and flags are fuzzed without
editing this file), some of its options with hostile values (API keys, terminal escapes, huge
numbers, dates at the calendar's edges, odd paths, NUL, long strings) or plausible ones (so that
runs get past the first check), an unknown option now and then, and stdin from /dev/null or a
hostile file. It runs in a temporary home with a temporary cache (bench/fuzz_common.py). Exits 1
if any vector failed; the report lists each failure class with an example to replay.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_common import ROOT, Runner, hostile_paths, hostile_value, sealed_env, summary  # noqa: E402

# Plausible values by option name: a vector mixes these with hostile ones to reach deeper code.
PLAUSIBLE = {
    "--charge-type": ["topup", "usage", "subscription"], "--amount": ["5", "80", "12.50"], "--ago": ["3h", "2d", "30m"],
    "--charged-at": ["2026-11-29", "2026-11-29T14:30"], "--cause": ["unused-credits", "runaway-script", "overuse"],
    "--now": ["2026-11-30T12:00:00Z"], "--platform": ["openrouter", "openai", "anthropic"], "--format": ["json", "csv", "text",
    "jsonl", "markdown", "sarif"], "--jobs": ["1", "2"], "--outcome": ["denied", "granted", "pending", "partial"],
    "--fail-below": ["likely", "unlikely"], "--evidence": ["logs,receipts", "none"], "--prior-refunds": ["0", "2"],
    "--fact": ["usage_span_days=3", "amount=5"], "--since": ["2026-11-01"], "--bucket": ["hour", "day"],
    "--concurrency": ["1", "4"], "--timeout": ["0.5", "1"], "--input-format": ["csv", "jsonl"], "--summary": ["short"],
}
SHELLS = ["bash", "zsh", "fish", "powershell", "tcsh"]
# The environment the program reads, set to hostile values now and then (never a NUL: an
# environment cannot hold one).
ENVIRONMENT = ["REFUNDADVISOR_RULES", "REFUNDADVISOR_PLATFORM", "REFUNDADVISOR_HOME", "REFUNDADVISOR_NO_INPUT",
               "REFUNDADVISOR_NO_CACHE", "REFUNDADVISOR_API_URL", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME",
               "TZ", "COLUMNS", "NO_COLOR", "FORCE_COLOR", "TERM", "OPENROUTER_API_KEY", "OPENAI_API_KEY"]


def commands() -> list[tuple[list[str], list]]:
    """Every command path and its parameters, from the app itself."""
    import typer.main

    from refundadvisor.cli import app

    found = []

    def walk(command, path):
        if hasattr(command, "commands"):
            found.append((path, list(command.params)))  # the group itself (its callback may run)
            for name, sub in command.commands.items():
                walk(sub, path + [name])
        else:
            found.append((path, list(command.params)))

    walk(typer.main.get_command(app), [])
    return found


def make_vector(rng: random.Random, table, paths: list[str], stdin_files: list[str]) -> tuple:
    path, params = rng.choice(table)
    args = list(path)
    options = [param for param in params if getattr(param, "opts", None) and param.opts[0].startswith("-")]
    positional = [param for param in params if param not in options]
    for param in rng.sample(options, k=min(len(options), rng.randint(0, 7))):
        name = rng.choice(param.opts)
        if getattr(param, "is_flag", False):
            args.append(name)
            continue
        if rng.random() < 0.45 and param.opts[0] in PLAUSIBLE:
            value = rng.choice(PLAUSIBLE[param.opts[0]])
        elif rng.random() < 0.3 and param.opts[0] in ("--rules", "--answers", "--history", "--output", "--ics",
                                                      "--generations", "--ids-file", "--csv"):
            value = rng.choice(paths)
        else:
            value = hostile_value(rng, paths)
        args += [f"{name}={value}"] if rng.random() < 0.1 else [name, value]
    for param in positional:
        count = rng.randint(1, 3) if getattr(param, "nargs", 1) == -1 else 1
        for _ in range(count):
            if param.name == "shell":
                args.append(rng.choice(SHELLS + [hostile_value(rng, paths)]))
            else:
                args.append(rng.choice(paths + ["-"] + [hostile_value(rng, paths)]))
    roll = rng.random()
    if roll < 0.05:
        args.insert(rng.randint(0, len(args)), rng.choice(["--no-such-flag", "-x", "--json=maybe", "--", "-h"]))
    elif roll < 0.08:
        rng.shuffle(args)
    stdin = rng.choice(stdin_files) if rng.random() < 0.3 else ""
    env = {}
    if rng.random() < 0.12:
        for name in rng.sample(ENVIRONMENT, k=rng.randint(1, 2)):
            env[name] = hostile_value(rng, paths).replace("\x00", "")
    return args, stdin, env


def stdin_files(workdir: Path) -> list[str]:
    """Inputs a command may read from stdin ('-'): answers, batch rows, backups, garbage."""
    files = {
        "answers.yaml": "charge_type: topup\namount: 0x_\nago: 3h\ncause: unused-credits\n",
        "rows.jsonl": '{"charge_type": "topup", "amount": 5, "ago": "3h", "cause": "unused-credits"}\n' * 3
                      + "[" * 1000 + "\n" + '{"id": "sk-or-v1-' + "ab" * 32 + '"}\n',
        "rows.csv": "\ufeffcharge_type,amount,ago,cause\ntopup,5,3h,unused-credits\r=HYPERLINK(1),9e999,0001-01-01,x\n",
        "garbage.bin": "\x00\x01\x02\xff" * 1000,
        "long-line.txt": "a" * 3_000_000,
        "flow.yaml": "[" + "1," * 300_000 + "1]",
    }
    paths = []
    for name, text in files.items():
        target = workdir / name
        target.write_text(text, encoding="utf-8", errors="surrogateescape")
        paths.append(str(target))
    return paths


def vectors(count: int, seed: int, workdir: Path) -> list[tuple]:
    rng = random.Random(seed)
    table = commands()
    paths = hostile_paths(workdir) + stdin_files(workdir)
    inputs = stdin_files(workdir)
    return [make_vector(rng, table, paths, inputs) for _ in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-cache", action="store_true", help="set REFUNDADVISOR_NO_CACHE (default: a temporary cache)")
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2 ** 32)
    runner_dir = Path(__import__("tempfile").mkdtemp(prefix="refundadvisor-fuzz-argv-"))
    runner = Runner(sealed_env(runner_dir, cache=not options.no_cache), timeout=options.timeout, jobs=options.jobs,
                    workdir=runner_dir)
    work = vectors(options.count, seed, runner_dir)
    started = time.monotonic()
    print(f"fuzz_argv: {len(work)} vectors, seed {seed}, in {runner_dir} (replay with --seed {seed})", flush=True)

    def progress(index, outcome):
        if outcome.problem:
            print(f"  [{index}] {outcome.problem}", flush=True)

    outcomes = runner.run_all(work, progress)
    report, failed = summary("fuzz_argv", seed, outcomes, time.monotonic() - started)
    slowest = max(outcomes, key=lambda outcome: outcome.seconds)
    print(report)
    print(f"slowest run: {slowest.seconds:.2f} s (refundadvisor {' '.join(repr(a)[:40] for a in slowest.args)[:200]})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
