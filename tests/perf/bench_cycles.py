"""`llmgw validate` on one long fallback cycle against the same estate without the cycle.

    python tests/perf/bench_cycles.py [--sizes 250,500,1000,2000] [--repeat 3] [--check]

For each size N it writes three estates (providers serving N+1 models, 10 each, over 4
namespaces, one gateway): `cycle`, N chains model-i -> model-(i+1 mod N), all on one
cycle of N models; `line`, N chains model-i -> model-(i+1), the same chains with no way
back; and `tangle`, N chains model-i -> the next three models (mod N), one component
whose every cycle is long (each chain's search for a short one of its own gives up).
Each is validated by `python -m llmgw.cli validate DIR` in a fresh process, `--repeat`
times taking turns, keeping the best; stdout is counted, not kept. `--metric cpu` times
user+system CPU instead of the wall clock, which holds steadier on a shared machine.

Printed per size: time and output bytes of each, the cycle/line and tangle/line ratios,
and the growth of the cycle's time from the size before. The target (issue 13): the
2,000-chain cycle in at most 3x the time of the 2,000-chain line; `--check` exits 1 when
it is missed. Not part of `make test` (pytest collects nothing here).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NAMESPACES = ("team-a", "team-b", "team-c", "team-d")
PER_PROVIDER = 10
TARGET = 3.0


def model(i: int) -> str:
    return f"model-{i:05d}"


SHAPES = ("cycle", "line", "tangle")


def fallbacks(shape: str, c: int, chains: int) -> list[str]:
    if shape == "line":
        return [model(c + 1)]
    if shape == "cycle":
        return [model((c + 1) % chains)]
    return [model((c + h) % chains) for h in (1, 2, 3)]


def estate(chains: int, shape: str) -> list[dict[str, Any]]:
    """The objects of one estate of N chains: on a cycle of N models, a line of N+1, a tangle."""
    models = chains + 1
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "llmgateway.dev/v1alpha1",
            "kind": "LLMGateway",
            "metadata": {"name": "main", "namespace": "ai-platform"},
            "spec": {"namespaces": {"from": "All"}},
        }
    ]
    for p in range(-(-models // PER_PROVIDER)):
        names = range(p * PER_PROVIDER, min((p + 1) * PER_PROVIDER, models))
        docs.append(
            {
                "apiVersion": "llmgateway.dev/v1alpha1",
                "kind": "LLMProvider",
                "metadata": {"name": f"vllm-{p}", "namespace": NAMESPACES[p % len(NAMESPACES)]},
                "spec": {
                    "type": "vllm",
                    "endpoint": {"service": {"name": f"vllm-{p}", "namespace": "gpu", "port": 8000}},
                    "models": [{"name": model(i)} for i in names],
                },
            }
        )
    for c in range(chains):
        docs.append(
            {
                "apiVersion": "llmgateway.dev/v1alpha1",
                "kind": "FallbackChain",
                "metadata": {"name": f"chain-{c:05d}", "namespace": NAMESPACES[c % len(NAMESPACES)]},
                "spec": {"model": model(c), "fallbacks": fallbacks(shape, c, chains)},
            }
        )
    return docs


def write(folder: Path, docs: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False)
    (folder / "estate.yaml").write_text(text, encoding="utf-8")


def validate(folder: Path, metric: str, package: Path) -> tuple[float, int, int]:
    """(seconds, stdout bytes, exit code) of one `llmgw validate` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(package)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "llmgw.cli", "validate", str(folder)],
        capture_output=True,
        env=env,
        check=False,
    )
    took = time.perf_counter() - start
    if metric == "cpu":  # the runs are one at a time, so the children's growth is this one's
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        took = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode not in (0, 1):
        raise SystemExit(f"llmgw validate {folder} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return took, len(done.stdout), done.returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="250,500,1000,2000", help="chains per estate, comma-separated")
    p.add_argument("--repeat", type=int, default=3, help="runs of each, the best kept")
    p.add_argument("--metric", choices=("wall", "cpu"), default="wall", help="what is timed")
    p.add_argument(
        "--operator",
        type=Path,
        default=ROOT / "operator",
        help="the folder holding llmgw (another tree's, to compare)",
    )
    p.add_argument("--check", action="store_true", help=f"exit 1 unless the largest cycle is <= {TARGET}x")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    heads = [("chains", 7), ("cycle s", 8), ("line s", 7), ("tangle s", 9), ("cyc/line", 9)]
    heads += [("tan/line", 9), ("growth", 7), ("cycle bytes", 12), ("line bytes", 11), ("tangle bytes", 13)]
    print(f"seconds of {'wall clock' if args.metric == 'wall' else 'user+system CPU'}, best of {args.repeat}")
    print(" ".join(f"{h:>{w}}" for h, w in heads))
    ratio = 0.0
    previous: float | None = None
    with tempfile.TemporaryDirectory(prefix="llmgw-bench-cycles-") as tmp:
        for n in sizes:
            folders = {shape: Path(tmp) / f"{shape}-{n}" for shape in SHAPES}
            for shape, folder in folders.items():
                write(folder, estate(n, shape))
            best: dict[str, tuple[float, int, int]] = {}
            for _ in range(args.repeat):
                for shape, folder in folders.items():
                    run = validate(folder, args.metric, args.operator)
                    if shape not in best or run[0] < best[shape][0]:
                        best[shape] = run
            (ct, cb, crc), (lt, lb, lrc), (tt, tb, trc) = (best[shape] for shape in SHAPES)
            if (crc, lrc, trc) != (1, 0, 1):
                raise SystemExit(f"unexpected exit codes at {n}: cycle {crc}, line {lrc}, tangle {trc}")
            ratio = ct / lt
            growth = f"{ct / previous:6.2f}x" if previous else f"{'':>7}"
            previous = ct
            row = f"{n:>7} {ct:>8.2f} {lt:>7.2f} {tt:>9.2f} {ratio:>8.2f}x {tt / lt:>8.2f}x {growth}"
            print(f"{row} {cb:>12,} {lb:>11,} {tb:>13,}")
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"{verdict}: {sizes[-1]:,}-chain cycle in {ratio:.2f}x the time of the line (target <= {TARGET}x)")
    return 1 if args.check and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
