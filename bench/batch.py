"""Batch throughput and memory: `refundadvisor batch` over generated charges, against a floor
script that only reads and re-serialises the same JSON lines, measured side by side.

    python bench/batch.py                 # 100,000 rows, 3 rounds; memory at 10,000 and 100,000
    python bench/batch.py --rows 20000 --rounds 5 --json

Budgets: batch time at most 4x the floor's (medians); peak memory for 100,000 rows within 1.3x
of 10,000 rows (streaming keeps it flat).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import clean_env, command_path, machine

TIME_BUDGET = 4.0
MEMORY_BUDGET = 1.3
FLOOR = ("import sys, json\n"
         "write = sys.stdout.write\n"
         "for line in sys.stdin:\n"
         "    write(json.dumps(json.loads(line)) + '\\n')\n")
CAUSES = ["unused-credits", "duplicate-charge", "credits-missing", "unauthorized", "platform-error",
          "runaway-script", "overuse", "dissatisfied"]
EVIDENCE = ["timestamps", "receipts", "card-statement", "request-ids", "logs", "screenshots", "activity-export"]


def make_rows(count: int, path: str, seed: int = 7) -> None:
    """Write `count` varied, valid charges as JSON Lines."""
    rng = random.Random(seed)
    with open(path, "w") as out:
        for number in range(count):
            charge_type = rng.choice(["topup", "usage", "usage", "subscription"])
            prior = rng.choice([0, 0, 0, 1, 2, 4])
            row = {
                "id": f"c{number}",
                "charge_type": charge_type,
                "amount": round(rng.uniform(1, 400), 2),
                "ago": f"{rng.randint(1, 24 * 60)}h",
                "cause": rng.choice(CAUSES),
                "payment_method": rng.choice(["card", "card", "card", "crypto"]),
                "prior_refunds": prior,
                "similar_prior": rng.randint(0, prior),
                "warned": prior > 2 and rng.random() < 0.5,
                "profile": rng.choice(["casual", "solo", "team"]),
                "evidence": rng.sample(EVIDENCE, rng.randint(0, 3)),
            }
            if charge_type != "topup":
                row["usage_span_days"] = rng.choice([1, 1, 3, 10])
            out.write(json.dumps(row) + "\n")


def run(argv: list[str], source: str, env: dict) -> tuple[float, int]:
    """Wall time in seconds and peak memory in KiB of one command reading `source`."""
    with open(source, "rb") as stdin:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench/batch.py: {' '.join(argv[:2])} failed with exit {os.waitstatus_to_exitcode(status)}")
    return elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    env = clean_env()
    folder = tempfile.mkdtemp(prefix="refundadvisor-batch-")
    big, small = os.path.join(folder, "big.jsonl"), os.path.join(folder, "small.jsonl")
    make_rows(args.rows, big)
    make_rows(max(args.rows // 10, 1), small)
    floor = [sys.executable, "-c", FLOOR]
    tool = [command_path("bench/batch.py"), "batch", "-", "-q", "--now", "2026-11-30T12:00:00Z"]
    run(tool, small, env)  # warm the rule cache and bytecode
    floor_times, tool_times, peaks = [], [], []
    for round_number in range(args.rounds):
        pair = [(floor, floor_times), (tool, tool_times)]
        for argv, times in pair if round_number % 2 == 0 else reversed(pair):
            elapsed, peak = run(argv, big, env)
            times.append(elapsed)
            if argv is tool:
                peaks.append(peak)
    small_peaks = [run(tool, small, env)[1] for _ in range(args.rounds)]
    floor_median, tool_median = statistics.median(floor_times), statistics.median(tool_times)
    big_peak, small_peak = statistics.median(peaks), statistics.median(small_peaks)
    figures = {
        "machine": machine(),
        "rows": args.rows,
        "rounds": args.rounds,
        "floor_median_s": round(floor_median, 2),
        "batch_median_s": round(tool_median, 2),
        "rows_per_second": round(args.rows / tool_median),
        "time_ratio": round(tool_median / floor_median, 2),
        "time_budget": TIME_BUDGET,
        "peak_kib_small": small_peak,
        "peak_kib_big": big_peak,
        "memory_ratio": round(big_peak / small_peak, 2),
        "memory_budget": MEMORY_BUDGET,
    }
    shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"machine: {figures['machine']}; {args.rows:,} rows, {args.rounds} interleaved rounds")
    print(f"floor (read + re-serialise JSON lines)  median {floor_median:6.2f} s")
    print(f"refundadvisor batch                     median {tool_median:6.2f} s  ({figures['rows_per_second']:,} rows/s)")
    verdict = "within budget" if figures["time_ratio"] <= TIME_BUDGET else "OVER BUDGET"
    print(f"time ratio {figures['time_ratio']:.2f} (budget {TIME_BUDGET}): {verdict}")
    verdict = "within budget" if figures["memory_ratio"] <= MEMORY_BUDGET else "OVER BUDGET"
    print(f"peak memory {small_peak / 1024:.1f} MiB at {args.rows // 10:,} rows, {big_peak / 1024:.1f} MiB at "
          f"{args.rows:,}: ratio {figures['memory_ratio']:.2f} (budget {MEMORY_BUDGET}): {verdict}")


if __name__ == "__main__":
    main()
