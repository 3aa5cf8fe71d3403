"""Start-up: `refundadvisor check` with every fact as a flag and --json, against the floor
`python -c "import typer, yaml"`, measured side by side in one run.

    python bench/startup.py            # 41 interleaved rounds
    python bench/startup.py --rounds 101 --json

    python bench/startup.py --instructions   # CPU instructions under valgrind's callgrind

Each round runs both commands, in alternating order, so that the machine's load falls on both
alike; the figures are medians of wall time. Bytecode writing is left on (as after a normal
install) and each command is warmed up first. Budget: the ratio is at most 1.3.

Wall time on a shared machine moves with its load; `--instructions` counts the instructions
each command executes under valgrind's callgrind instead, which is the same from run to run
whatever else the machine is doing (hash randomisation is fixed for it), so its ratio is the
figure to compare between versions.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time

from common import clean_env, command_path, machine

BUDGET = 1.3
CHECK_ARGS = ["check", "--charge-type", "usage", "--amount", "12.40", "--ago", "5h", "--cause", "platform-error",
              "--payment-method", "card", "--prior-refunds", "0", "--similar-prior", "0", "--not-warned",
              "--profile", "solo", "--usage-span-days", "1", "--evidence", "logs,request-ids", "--json"]


def timed(argv: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def instructions(argv: list[str], env: dict) -> int:
    """How many instructions the command executes, counted by callgrind."""
    result = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                            env={**env, "PYTHONHASHSEED": "0"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, check=True)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if not found:
        sys.exit("bench/startup.py: callgrind printed no instruction count")
    return int(found.group(1))


def count_instructions(floor: list[str], tool: list[str], env: dict) -> tuple[dict, list[str]]:
    if not shutil.which("valgrind"):
        sys.exit("bench/startup.py: --instructions needs valgrind (apt-get install valgrind)")
    floor_count, tool_count = instructions(floor, env), instructions(tool, env)
    figures = {"floor_instructions": floor_count, "check_json_instructions": tool_count,
               "ratio": tool_count / floor_count}
    return figures, ["instructions counted by callgrind", f"{floor_count:>15,} instructions",
                     f"{tool_count:>15,} instructions"]


def median_times(floor: list[str], tool: list[str], env: dict, rounds: int) -> tuple[dict, list[str]]:
    floor_times, tool_times = [], []
    for round_number in range(rounds):
        pair = [(floor, floor_times), (tool, tool_times)]
        for argv, times in pair if round_number % 2 == 0 else reversed(pair):
            times.append(timed(argv, env))
    floor_ms, tool_ms = statistics.median(floor_times) * 1000, statistics.median(tool_times) * 1000
    figures = {"rounds": rounds, "floor_median_ms": round(floor_ms, 1), "check_json_median_ms": round(tool_ms, 1),
               "ratio": tool_ms / floor_ms}
    return figures, [f"{rounds} interleaved rounds", f"median {floor_ms:7.1f} ms", f"median {tool_ms:7.1f} ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--instructions", action="store_true",
                        help="count CPU instructions under callgrind instead of timing (load-independent)")
    args = parser.parse_args()
    env = clean_env()
    floor = [sys.executable, "-c", "import typer, yaml"]
    tool = [command_path("bench/startup.py"), *CHECK_ARGS]
    for _ in range(3):
        timed(floor, env)
        timed(tool, env)
    if args.instructions:
        figures, (how, floor_line, tool_line) = count_instructions(floor, tool, env)
    else:
        figures, (how, floor_line, tool_line) = median_times(floor, tool, env, args.rounds)
    ratio = figures["ratio"]
    figures = {"machine": machine(), **figures, "ratio": round(ratio, 2), "budget": BUDGET,
               "within_budget": ratio <= BUDGET}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"machine: {figures['machine']}; {how}")
        print(f"python -c 'import typer, yaml'   {floor_line}")
        print(f"refundadvisor check ... --json   {tool_line}")
        print(f"ratio {ratio:.2f} (budget {BUDGET}): {'within budget' if ratio <= BUDGET else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
