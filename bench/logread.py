"""The response-log reader against a bare loop of json.loads over the same lines, and its
peak memory at two sizes (it must stay flat: per-minute aggregates only).

    python bench/logread.py                 # 1,000,000 generated lines, 3 interleaved rounds
    python bench/logread.py --lines 200000 --rounds 5 --json

Each measurement runs in a fresh process (so peak memory is that run's alone); the figures are
medians of wall time. Budget: the reader takes at most 3 times the bare loop.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

from common import machine

BUDGET = 3.0
DAY = 1764547200  # 2025-12-01T00:00:00Z

FLOOR = """
import json, resource, sys, time
started = time.perf_counter()
with open(sys.argv[1], "rb") as stream:
    for line in stream:
        try:
            json.loads(line)
        except ValueError:
            pass
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

READER = """
import resource, sys, time
from refundadvisor.evidence.logread import read_log
started = time.perf_counter()
with open(sys.argv[1], "rb") as stream:
    read_log(stream, sys.argv[1]).document()
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def generate(path: str, lines: int) -> None:
    """A week of traffic: sparse requests with varied prompts, a runaway loop of one request a
    second, billed errors, error bodies and a broken line now and then."""
    chance = random.Random(7)
    loop_start = DAY + 3 * 86400 + 14 * 3600
    with open(path, "w", encoding="utf-8") as out:
        for number in range(lines):
            roll = chance.random()
            if roll < 0.6:
                created = loop_start + number // 10
                item = {"id": f"gen-{number}", "object": "chat.completion", "created": created,
                        "model": "openai/gpt-4o", "choices": [{"index": 0, "finish_reason": "stop",
                                                               "message": {"role": "assistant", "content": "ok"}}],
                        "usage": {"prompt_tokens": 1234, "completion_tokens": 80, "total_tokens": 1314,
                                  "cost": 0.002}}
            elif roll < 0.97:
                created = DAY + chance.randrange(7 * 86400)
                finish = "error" if roll > 0.95 else "stop"
                item = {"id": f"gen-{number}", "object": "chat.completion", "created": created,
                        "model": chance.choice(["openai/gpt-4o", "anthropic/claude-sonnet-4", "google/gemini-2.5"]),
                        "choices": [{"index": 0, "finish_reason": finish,
                                     "message": {"role": "assistant", "content": "a reply " * chance.randrange(1, 20)}}],
                        "usage": {"prompt_tokens": chance.randrange(10, 8000), "completion_tokens": 0 if finish == "error"
                                  else chance.randrange(1, 900), "total_tokens": 0, "cost": round(chance.random() / 100, 6)}}
            elif roll < 0.9999:
                item = {"error": {"code": 429, "message": "Rate limit exceeded",
                                  "metadata": {"error_type": "rate_limit_exceeded"}},
                        "timestamp": DAY + chance.randrange(7 * 86400)}
            else:
                out.write('{"id": "gen-broken", "created": \n')
                continue
            out.write(json.dumps(item) + "\n")


def measure(script: str, path: str) -> tuple[float, int]:
    result = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, check=True)
    seconds, peak_kib = result.stdout.split()
    return float(seconds), int(peak_kib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="refundadvisor-bench-log-")
    big, small = os.path.join(folder, "big.jsonl"), os.path.join(folder, "small.jsonl")
    generate(big, args.lines)
    generate(small, max(1, args.lines // 10))
    floor_times, reader_times, floor_peaks, reader_peaks = [], [], [], []
    try:
        measure(FLOOR, small), measure(READER, small)  # warm the page cache and bytecode
        for round_number in range(args.rounds):
            pair = [(FLOOR, floor_times, floor_peaks), (READER, reader_times, reader_peaks)]
            for script, times, peaks in pair if round_number % 2 == 0 else reversed(pair):
                seconds, peak = measure(script, big)
                times.append(seconds)
                peaks.append(peak)
        small_peak = measure(READER, small)[1]
        size = os.path.getsize(big)
    finally:
        for path in (big, small):
            os.unlink(path)
        os.rmdir(folder)
    floor_median, reader_median = statistics.median(floor_times), statistics.median(reader_times)
    ratio = reader_median / floor_median
    figures = {
        "machine": machine(),
        "lines": args.lines,
        "file_mib": round(size / 1024 / 1024, 1),
        "rounds": args.rounds,
        "json_loads_loop_median_s": round(floor_median, 2),
        "reader_median_s": round(reader_median, 2),
        "reader_lines_per_s": round(args.lines / reader_median),
        "ratio": round(ratio, 2),
        "budget": BUDGET,
        "within_budget": ratio <= BUDGET,
        "peak_mib_json_loads_loop": round(max(floor_peaks) / 1024, 1),
        "peak_mib_reader": round(max(reader_peaks) / 1024, 1),
        "peak_mib_reader_tenth": round(small_peak / 1024, 1),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"machine: {figures['machine']}; {args.lines:,} lines ({figures['file_mib']} MiB), {args.rounds} rounds")
    print(f"for line in file: json.loads(line)   median {floor_median:6.2f} s   peak {figures['peak_mib_json_loads_loop']} MiB")
    print(f"read_log(file).document()            median {reader_median:6.2f} s   peak {figures['peak_mib_reader']} MiB "
          f"({figures['reader_lines_per_s']:,} lines/s)")
    print(f"reader peak on a tenth of the lines: {figures['peak_mib_reader_tenth']} MiB")
    print(f"ratio {ratio:.2f} (budget {BUDGET}): {'within budget' if ratio <= BUDGET else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
