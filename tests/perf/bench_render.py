"""Benchmark of `llmgw render` against a floor measured in the same run (`make bench`).

    python tests/perf/bench_render.py [--scale 1] [--repeat 5] [--check] [--keep DIR]

At scale 1 it generates (tests/perf/gen.py) an estate of 10,000 models and
5,000 fallback chains, and the same at twice the size, then times, in fresh
subprocesses, best of --repeat, wall clock:

- llmgw: `python -m llmgw.cli render DIR`, stdout to /dev/null;
- the floor: a Python process that only reads the same files with PyYAML's C
  loader (`yaml.load_all(..., Loader=CSafeLoader)`), turns them with plain dict
  operations (no validation, no checks) into a config shaped like the render's
  (the same model_list entries, fallbacks and aliases), dumps it with
  `CSafeDumper` and the render's dump options, pads or trims the text to exactly
  the byte count of llmgw's output, and writes it to the same /dev/null.

Both are started with the same interpreter (this one: use the project's venv),
alternately, so noise on the machine falls on both. Targets (from the issue):
llmgw at most 1.5x the floor at each size, and twice the input in at most 2.2x
the time. The table also gives the peak RSS of each process (wait4 rusage).
Exit 0, or 1 on a FAIL with --check only; 2 when llmgw itself fails.

Not collected by pytest (the name does not match test_*.py) and not part of the
default test run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen

BASE_MODELS = 10_000
BASE_CHAINS = 5_000
MAX_RATIO = 1.5
MAX_SCALING = 2.2

# The floor process: read and parse the same files, dump an output of the same size.
FLOOR = r"""
import sys
from pathlib import Path
import yaml

folder, size = Path(sys.argv[1]), int(sys.argv[2])
files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json"))
docs = []
for path in files:
    docs += [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader) if d]
prefix = {"vllm": "hosted_vllm/", "ollama": "ollama_chat/", "llamacpp": "openai/",
          "openai-compatible": "openai/", "openai": "openai/", "anthropic": "anthropic/"}
models, router, aliases = [], {}, {}
for d in docs:
    kind, meta, spec = d.get("kind"), d.get("metadata", {}), d.get("spec", {})
    if kind == "LLMProvider":
        owner = meta.get("namespace", "default") + "/" + meta["name"]
        endpoint = spec.get("endpoint") or {}
        svc = endpoint.get("service")
        base = endpoint.get("url") or (
            svc and "http://%s.%s.svc.cluster.local:%s/v1" % (svc["name"], svc.get("namespace"), svc["port"]))
        ref = spec.get("apiKeySecretRef")
        for m in spec.get("models", ()):
            params = dict(m.get("params") or {})
            params["model"] = prefix[spec["type"]] + m.get("backendModel", m["name"])
            if base:
                params["api_base"] = base
            if ref:
                params["api_key"] = "os.environ/" + ref["name"] + "_" + ref["key"]
            for k in ("rpm", "tpm"):
                if k in m:
                    params[k] = m[k]
            info = {"id": owner + "/" + m["name"], "llmgw_provider": owner}
            if "contextWindow" in m:
                info["max_input_tokens"] = m["contextWindow"]
            models.append({"model_name": m["name"], "litellm_params": params, "model_info": info})
            for a in m.get("aliases", ()):
                aliases[a] = m["name"]
    elif kind == "FallbackChain":
        router.setdefault(spec.get("trigger", "errors"), []).append({spec["model"]: spec["fallbacks"]})
router["model_group_alias"] = aliases
text = yaml.dump({"model_list": models, "router_settings": router}, Dumper=yaml.CSafeDumper,
                 sort_keys=True, default_flow_style=False, allow_unicode=True, width=4096)
natural = len(text.encode())
if len(text) < size:
    pad = size - len(text)
    text += ("#" * 79 + "\n") * (pad // 80) + "#" * (pad % 80)
sys.stdout.write(text[:size])
sys.stderr.write("natural=%d\n" % natural)
"""


class Run(NamedTuple):
    wall: float  # seconds, wall clock, from start to exit
    cpu: float  # user + system seconds of the process
    rss: float  # peak resident set, MiB


def _timed(cmd: list[str]) -> Run:
    """One fresh process, stdout to /dev/null; its own rusage from wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... exited {proc.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def commands(folder: Path, size: int) -> dict[str, list[str]]:
    return {
        "llmgw": [sys.executable, "-m", "llmgw.cli", "render", str(folder)],
        "floor": [sys.executable, "-c", FLOOR, str(folder), str(size)],
        # Not a target: the floor with the cyclic GC off too, as `llmgw render` runs.
        "floor-nogc": [sys.executable, "-c", "import gc; gc.disable()\n" + FLOOR, str(folder), str(size)],
    }


def measure(folder: Path, repeat: int) -> dict[str, Any]:
    # An untimed run first: it checks the render, gives its size, and warms the page cache.
    first = subprocess.run(
        [sys.executable, "-m", "llmgw.cli", "render", str(folder)], capture_output=True, check=False
    )
    if first.returncode != 0:
        sys.stderr.write(first.stderr.decode(errors="replace"))
        raise SystemExit(f"llmgw render {folder} exited {first.returncode}")
    if first.stderr:
        sys.stderr.write(f"note: llmgw left objects out:\n{first.stderr.decode(errors='replace')[:2000]}")
    size = len(first.stdout)
    cmds = commands(folder, size)
    floor_run = subprocess.run(cmds["floor"], capture_output=True, check=True)
    assert len(floor_run.stdout) == size, (len(floor_run.stdout), size)
    natural = int(floor_run.stderr.decode().strip().rsplit("=", 1)[1])
    runs: dict[str, list[Run]] = {name: [] for name in cmds}
    for _ in range(repeat):  # alternately, so that a busy moment falls on all of them
        for name, cmd in cmds.items():
            runs[name].append(_timed(cmd))
    best = {
        name: Run(min(r.wall for r in rs), min(r.cpu for r in rs), max(r.rss for r in rs))
        for name, rs in runs.items()
    }
    return {"best": best, "bytes": size, "floor_natural": natural}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="1 = 10,000 models and 5,000 chains")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each process; the best counts")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument(
        "--metric",
        choices=("wall", "cpu"),
        default="wall",
        help="what the verdicts use: wall clock (default) or user+system CPU seconds, steadier "
        "on a busy machine",
    )
    ap.add_argument("--keep", type=Path, help="write the inputs here and keep them")
    args = ap.parse_args(argv)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="llmgw-bench-") as tmp:
        root = args.keep or Path(tmp)
        rows = []
        for factor in (1, 2):
            models = round(BASE_MODELS * args.scale * factor)
            chains = round(BASE_CHAINS * args.scale * factor)
            folder = root / f"x{factor}"
            info = gen.write(folder, models, chains)
            rows.append((factor, info, measure(folder, args.repeat)))

    print(
        f"llmgw render vs the floor (PyYAML C loader + C dumper, same input, same output bytes); "
        f"best of {args.repeat}, fresh processes; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPU(s), load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    head = (
        f"{'size':>4} {'models':>6} {'chains':>6} {'input B':>8} {'output B':>8} | "
        f"{'llmgw':>6} {'floor':>6} {'ratio':>5} | {'llmgw':>6} {'floor':>6} {'ratio':>5} | "
        f"{'nogc':>6} {'ratio':>5} | {'RSS llmgw':>9} {'RSS floor':>9}"
    )
    print(f"{'':>36} | {'wall clock, s':^20} | {'CPU (user+sys), s':^20} | {'floor-nogc':^12} |")
    print(head)
    print("-" * len(head))
    ratios: dict[int, float] = {}
    for factor, info, r in rows:
        b = r["best"]
        lw, fw, nw = b["llmgw"].wall, b["floor"].wall, b["floor-nogc"].wall
        lc, fc = b["llmgw"].cpu, b["floor"].cpu
        ratios[factor] = lw / fw if args.metric == "wall" else lc / fc
        print(
            f"{factor:>3}x {info['models']:>6} {info['chains']:>6} {info['bytes']:>8} {r['bytes']:>8} | "
            f"{lw:>6.2f} {fw:>6.2f} {lw / fw:>5.2f} | {lc:>6.2f} {fc:>6.2f} {lc / fc:>5.2f} | "
            f"{nw:>6.2f} {lw / nw:>5.2f} | {b['llmgw'].rss:>5.0f} MiB {b['floor'].rss:>5.0f} MiB"
        )
    print(
        f"(the floor's own output: {rows[0][2]['floor_natural']} bytes at 1x before it is padded or "
        "trimmed to llmgw's; floor-nogc: the same floor with the cyclic GC off, as llmgw render runs)"
    )
    (_, _, one), (_, _, two) = rows

    def pick(run: Run) -> float:
        return run.wall if args.metric == "wall" else run.cpu

    scaling = pick(two["best"]["llmgw"]) / pick(one["best"]["llmgw"])
    floor_scaling = pick(two["best"]["floor"]) / pick(one["best"]["floor"])
    print(f"scaling 2x/1x ({args.metric}): llmgw {scaling:.2f}, floor {floor_scaling:.2f}")

    verdicts = [(f"llmgw/floor at {f}x <= {MAX_RATIO}", q <= MAX_RATIO) for f, q in ratios.items()]
    verdicts.append((f"twice the input in <= {MAX_SCALING}x the time", scaling <= MAX_SCALING))
    for what, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}: {what} ({args.metric})")
    failed = not all(ok for _, ok in verdicts)
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
