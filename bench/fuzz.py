"""Fuzz the config loader, the plan and the modules: N mutants of the built-in and reference configs
(tests/mutants.py: numbers, module names, rows, `from`, argument types, YAML structure and text), each
built on the meta device as `zoo validate` does. The promise: every outcome is a model or a ConfigError.
With --agree (the default) each mutant also goes through `zoo validate FILE` and `zoo profile FILE
--no-latency` (real weights, the counting pass): both ok, or both the same one-line error.

Writes bench/results/fuzz.{json,md}: counts by outcome, each crash kind with an example, mutants over
the time limit, the slowest mutant and the process's peak memory.

    python bench/fuzz.py                # 10,000 mutants (about 40 minutes on a quiet 2-core machine)
    python bench/fuzz.py -n 500 --out /tmp/fuzz
    python bench/fuzz.py --no-agree     # the build outcome only (about 4 times faster)
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from _search_common import RESULTS, machine, md_table  # noqa: E402

LIMIT_S = 10.0  # a mutant building longer than this breaks the validate promise (counted as "over 10 s")


class _Slow(BaseException):
    """Raised by the alarm inside a mutant's build (a BaseException: the outcome check does not catch it)."""


def _mutants_module() -> Any:
    spec = importlib.util.spec_from_file_location("zoo_tests_mutants", ROOT / "tests" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(n: int, seed: int, agree: bool = True) -> dict[str, Any]:
    from hypothesis import HealthCheck, given, seed as hseed, settings

    from zoo.plugins import ensure_loaded

    ensure_loaded()
    m = _mutants_module()
    counts: collections.Counter[str] = collections.Counter()
    crashes: dict[str, dict[str, Any]] = {}
    agreement: collections.Counter[str] = collections.Counter()
    disagreements: list[dict[str, Any]] = []
    slowest = (0.0, "")
    folder = Path(tempfile.mkdtemp(prefix="zoo-fuzz-"))

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Slow

    signal.signal(signal.SIGALRM, on_alarm)

    @hseed(seed)
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(m.mutants())
    def one(mutant: tuple[str, Any]) -> None:
        nonlocal slowest
        base, data = mutant
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, LIMIT_S)
        try:
            outcome = m.build_outcome(data, folder)
        except _Slow:
            counts[f"over {LIMIT_S:g} s"] += 1
            return
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        counts[outcome.kind] += 1
        seconds = time.perf_counter() - t0
        if seconds > slowest[0]:
            slowest = (seconds, base)
        if outcome.kind == "crash":
            c = crashes.setdefault(outcome.detail, {"count": 0, "base": base, "example": repr(data)[:2000]})
            c["count"] += 1
        if agree:
            a = m.cli_agreement(data, folder)
            agreement[a.kind] += 1
            if a.kind == "disagree" and len(disagreements) < 20:
                disagreements.append({"base": base, "validate": a.validate, "profile": a.profile,
                                      "example": repr(data)[:2000]})

    t0 = time.time()
    one()
    return {"mutants": sum(counts.values()), "requested": n, "seed": seed, "counts": dict(counts),
            "crashes": [{"error": k, **v} for k, v in sorted(crashes.items(), key=lambda kv: -kv[1]["count"])],
            "agreement": dict(agreement) if agree else None, "disagreements": disagreements,
            "slowest_s": round(slowest[0], 2), "slowest_base": slowest[1],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "elapsed_s": round(time.time() - t0, 1), "machine": machine(), "bases": len(m.BASES)}


def table(r: dict[str, Any]) -> str:
    rows = [[kind, f"{count:,}", f"{count / r['mutants']:.1%}"] for kind, count in sorted(r["counts"].items())]
    text = [f"Fuzzing: {r['mutants']:,} mutants of {r['bases']} configs (seed {r['seed']}), built on the meta "
            f"device as `zoo validate` does; {r['elapsed_s']:,} s, slowest {r['slowest_s']} s ({r['slowest_base']}), "
            f"peak memory {r['peak_rss_mib']} MiB", "", md_table(["outcome", "mutants", "share"], rows)]
    if r.get("agreement") is not None:
        a = r["agreement"]
        text += ["", f"`zoo validate FILE` against `zoo profile FILE --no-latency` (ok, or the same one-line error): "
                     f"{a.get('agree', 0):,} agree, {a.get('disagree', 0):,} disagree, {a.get('no file', 0):,} mutants "
                     "have no YAML text (an int of over 4,300 digits) and were not written"]
        if r["disagreements"]:
            text += ["", md_table(["base", "validate", "profile"], [[d["base"], d["validate"], d["profile"]]
                                                                    for d in r["disagreements"]])]
    if r["crashes"]:
        text += ["", md_table(["crash", "count", "base"], [[c["error"], c["count"], c["base"]] for c in r["crashes"]])]
    return "\n".join(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=10_000, help="mutants (default 10,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder of fuzz.json and fuzz.md (default bench/results)")
    ap.add_argument("--agree", action=argparse.BooleanOptionalAction, default=True,
                    help="also check that zoo validate and zoo profile agree on each mutant (default on)")
    args = ap.parse_args()
    r = run(args.n, args.seed, args.agree)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fuzz.json").write_text(json.dumps(r, indent=2) + "\n")
    (args.out / "fuzz.md").write_text(table(r) + "\n")
    print(table(r))
    print(f"wrote {args.out / 'fuzz.json'} and .md")
    disagree = bool(r["agreement"] and r["agreement"].get("disagree"))
    sys.exit(1 if set(r["counts"]) - {"model", "ConfigError"} or disagree else 0)


if __name__ == "__main__":
    main()
