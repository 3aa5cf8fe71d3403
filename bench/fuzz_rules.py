"""Mutated rule files: every one is a valid rule set or a located error, never a traceback or a hang.

    python bench/fuzz_rules.py [--count 500] [--seed N] [--timeout 10] [--jobs 2]

Each file starts from the shipped rules.yaml or a platforms/*.yaml (laid out as shipped, so that
`extends:` still resolves) and gets one to four mutations: on the data (a value of another type,
a huge or non-finite number, a key renamed, removed or duplicated, an item duplicated, a list
emptied, a value wrapped in a list or a mapping, an id or fact reference changed) and on the text
(an anchor on a key reused as a value, a tag, a line dropped or repeated, a tab, a BOM, CR line
endings, a NUL, the file cut short). Every file goes through `rules validate`, and through
`check --rules` or `rules test`, each run timed and watched as in fuzz_argv.py. Exits 1 if any
run failed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_common import ESCAPES, KEYS, ROOT, Runner, sealed_env, summary  # noqa: E402

SOURCES = [ROOT / "rules.yaml", *sorted((ROOT / "platforms").glob("*.yaml"))]
CHECK = ["--charge-type", "topup", "--amount", "5", "--ago", "3h", "--cause", "unused-credits", "-q",
         "--now", "2026-11-30T12:00:00Z"]
ODD_VALUES = [None, True, False, 0, -1, 10 ** 12, -(10 ** 12), 10 ** 30, 1e308, float("inf"), float("-inf"), float("nan"),
              0.5, "", " ", "x" * 5000, [], {}, [[]], {"any": []}, {"all": [{"fact": "nope", "eq": 1}]}, {"param": "nope"},
              {"fact": "amount"}, ["a", "b"], "2026-02-30", "0001-01-01", "9999-12-31", *KEYS[:2], *ESCAPES[:4]]
TEXT_SCALARS = ["0x_", "0b_", "!!int abc", "!!float 1e", "1" * 4400, "1:20", "010", "yes", "!!python/name:os.system",
                "!!binary aGk=", "!!set {a}", "!!omap [a: 1]", "~", ".nan", "-.inf", "2026-11-30", "!custom x", "*nope"]


def _nodes(data, path=()):
    """Every (path, value) in a document, containers included."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _nodes(value, path + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _nodes(value, path + (index,))


def _set(data, path, value):
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return data


def _ids_and_facts(data) -> list[str]:
    names = []
    for _, value in _nodes(data):
        if isinstance(value, dict):
            names += [str(value[key]) for key in ("id", "fact") if isinstance(value.get(key), str)]
    if isinstance(data, dict) and isinstance(data.get("facts"), dict):
        names += list(data["facts"])
    return names or ["amount"]


def mutate_data(rng: random.Random, data):
    nodes = list(_nodes(data))
    path, value = rng.choice(nodes)
    kind = rng.randrange(9)
    if kind == 0:  # a value of another type, or an odd one
        return _set(data, path, rng.choice(ODD_VALUES))
    if kind == 1 and isinstance(value, dict) and value:  # a key removed or renamed
        key = rng.choice(list(value))
        moved = value.pop(key)
        if rng.random() < 0.6:
            value[rng.choice([str(key) + "s", str(key)[:-1] or "x", str(key).upper(), "when", "id", 7, "fact"])] = moved
        return data
    if kind == 2 and isinstance(value, list) and value:  # an item repeated, dropped or the list emptied
        roll = rng.random()
        if roll < 0.4:
            value.append(rng.choice(value))
        elif roll < 0.7:
            value.pop(rng.randrange(len(value)))
        else:
            value.clear()
        return data
    if kind == 3:  # wrapped in a list or a mapping, or nested deeper
        wrapped = [value] if rng.random() < 0.5 else {rng.choice(["any", "all", "not", "fact", "param", "x"]): value}
        for _ in range(rng.choice([0, 0, 0, 30, 60])):
            wrapped = [wrapped]
        return _set(data, path, wrapped)
    if kind == 4 and isinstance(value, str):  # an id or a fact name swapped for another (or a near miss)
        names = _ids_and_facts(data)
        return _set(data, path, rng.choice(names + [value + "x", value[:-1], value.upper()]))
    if kind == 5 and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _set(data, path, rng.choice([-value, value * 10 ** 9, value + 0.5, 0, -1, 10 ** 15, 1e-9]))
    if kind == 6 and isinstance(value, dict):  # a key added
        value[rng.choice(["when", "score", "cap", "floor", "outcome", "after", "unit", "returns", "extends",
                          "overrides", "min", "max", "default", "ask_when", "choices", "only"])] = rng.choice(ODD_VALUES)
        return data
    if kind == 7 and isinstance(value, list) and len(value) > 1:  # order changed
        rng.shuffle(value)
        return data
    if kind == 8 and isinstance(data, dict):  # a whole section of another type
        section = rng.choice(list(data))
        data[section] = rng.choice(ODD_VALUES)
        return data
    return _set(data, path, rng.choice(ODD_VALUES))


def mutate_text(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    kind = rng.randrange(10)
    index = rng.randrange(len(lines))
    line = lines[index]
    if kind == 0 and ":" in line:  # an anchor on a key, reused as a value further on
        head, sep, tail = line.partition(":")
        indent = len(head) - len(head.lstrip())
        lines[index] = head[:indent] + "&k " + head[indent:] + sep + tail
        later = [number for number in range(index + 1, len(lines)) if ": " in lines[number]]
        if later:
            target = rng.choice(later)
            key, _, _ = lines[target].partition(": ")
            lines[target] = key + ": *k"
    elif kind == 1 and ": " in line:  # a scalar PyYAML's constructors choke on, or a tag
        key, _, _ = line.partition(": ")
        lines[index] = key + ": " + rng.choice(TEXT_SCALARS)
    elif kind == 2:
        lines.insert(index, line)
    elif kind == 3:
        lines.pop(index)
    elif kind == 4:
        lines[index] = "\t" + line
    elif kind == 5:
        return "\ufeff" + text
    elif kind == 6:
        return text.replace("\n", "\r")
    elif kind == 7:
        lines[index] = line + "\x00"
    elif kind == 8:
        return text[: rng.randrange(len(text) + 1)]
    else:
        lines[index] = line + rng.choice([" #", " [", " {", " &a", " *a", " !!str", " |", " >", "'", ' "'])
    return "\n".join(lines)


def mutated_files(count: int, seed: int, workdir: Path) -> list[Path]:
    """``count`` mutated files, each in its own copy of the shipped layout (root and platforms/)."""
    rng = random.Random(seed)
    parsed = {source: yaml.safe_load(source.read_text()) for source in SOURCES}
    files = []
    for number in range(count):
        tree = workdir / f"tree-{number}"
        (tree / "platforms").mkdir(parents=True)
        shutil.copy(ROOT / "rules.yaml", tree / "rules.yaml")
        source = rng.choice(SOURCES)
        target = tree / source.relative_to(ROOT)
        data = yaml.safe_load(yaml.safe_dump(parsed[source]))  # a deep copy
        for _ in range(rng.randint(0, 3)):
            data = mutate_data(rng, data)
        try:
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        except (yaml.YAMLError, RecursionError, ValueError):
            text = source.read_text()
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            text = mutate_text(rng, text)
        target.write_text(text, encoding="utf-8", errors="surrogateescape")
        if source.parent.name == "platforms":
            files.append(target)
        else:  # a mutated shared file, reached through an unchanged platform that extends it
            platform = rng.choice(SOURCES[1:])
            shutil.copy(platform, tree / "platforms" / platform.name)
            files.append(rng.choice([target, tree / "platforms" / platform.name]))
    return files


def vectors(files: list[Path], rng: random.Random) -> list[tuple[list[str], str]]:
    work = []
    for path in files:
        work.append((["rules", "validate", str(path)], ""))
        work.append(rng.choice([["check", "--rules", str(path), *CHECK], ["rules", "test", str(path)],
                                ["rules", "show", str(path), "--json"], ["draft", "--rules", str(path), *CHECK[:-3]]]))
        work[-1] = (work[-1], "")
    return work


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="mutated files (each is run twice)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--jobs", type=int, default=2)
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2 ** 32)
    workdir = Path(tempfile.mkdtemp(prefix="refundadvisor-fuzz-rules-"))
    files = mutated_files(options.count, seed, workdir)
    runner = Runner(sealed_env(workdir, cache=True), timeout=options.timeout, jobs=options.jobs, workdir=workdir)
    work = vectors(files, random.Random(seed))
    print(f"fuzz_rules: {len(files)} mutated files, {len(work)} runs, seed {seed}, in {workdir} (replay with --seed {seed})",
          flush=True)
    started = time.monotonic()

    def progress(index, outcome):
        if outcome.problem:
            print(f"  [{index}] {outcome.problem}", flush=True)

    outcomes = runner.run_all(work, progress)
    report, failed = summary("fuzz_rules", seed, outcomes, time.monotonic() - started)
    print(report)
    valid = sum(1 for outcome, (args, _) in zip(outcomes, work) if args[:2] == ["rules", "validate"] and outcome.code == 0)
    print(f"{valid} of {len(files)} mutated files still validate; slowest run {max(o.seconds for o in outcomes):.2f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
