"""Start-up: `refundadvisor check` with every fact as a flag and --json, against the floor
`python -c "import typer, yaml"`, measured side by side in one run.

    python bench/startup.py            # 41 interleaved rounds
    python bench/startup.py --rounds 101 --json

Each round runs both commands, in alternating order, so that the machine's load falls on both
alike; the figures are medians of wall time. Bytecode writing is left on (as after a normal
install) and each command is warmed up first. Budget: the ratio is at most 1.3.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    env = clean_env()
    floor = [sys.executable, "-c", "import typer, yaml"]
    tool = [command_path("bench/startup.py"), *CHECK_ARGS]
    for _ in range(3):
        timed(floor, env)
        timed(tool, env)
    floor_times, tool_times = [], []
    for round_number in range(args.rounds):
        pair = [(floor, floor_times), (tool, tool_times)]
        for argv, times in pair if round_number % 2 == 0 else reversed(pair):
            times.append(timed(argv, env))
    floor_median = statistics.median(floor_times)
    tool_median = statistics.median(tool_times)
    ratio = tool_median / floor_median
    figures = {
        "machine": machine(),
        "rounds": args.rounds,
        "floor_median_ms": round(floor_median * 1000, 1),
        "check_json_median_ms": round(tool_median * 1000, 1),
        "ratio": round(ratio, 2),
        "budget": BUDGET,
        "within_budget": ratio <= BUDGET,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"machine: {figures['machine']}; {args.rounds} interleaved rounds")
        print(f"python -c 'import typer, yaml'   median {figures['floor_median_ms']:7.1f} ms")
        print(f"refundadvisor check ... --json   median {figures['check_json_median_ms']:7.1f} ms")
        print(f"ratio {ratio:.2f} (budget {BUDGET}): {'within budget' if ratio <= BUDGET else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
