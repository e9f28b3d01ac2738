"""One table judged in several sessions: records of bench/lut_accuracy.py on the same candidates, side by side.

A table is judged against one session's measured medians, and on this VM a candidate's standing moves
between sessions by more than the rounds' noise (bench/results/lut_accuracy_torch320_yolov8s_sessions.md):
one session is a noisy reference, and the even/odd floor, which shares every minute of its session, does
not show it. This reads N records of one case (the same candidates, checked by their rows' digests where both
records have them; the first record's predictions are used, and how far the others' differ is reported) and writes:
  - every pair of sessions against each other: the level between them, the shares within 5%/10% once it is
    divided out, Kendall tau, and the sd of the candidates' log ratio (per-candidate disagreement, in %);
  - the table against each session and against all of them together (each candidate's geometric mean over
    the sessions, each session's median level divided out first): at each reference's own level (so the
    shares say how well the table's shape fits, not where the device stood), tau and the same sd.
Nothing is timed. Usage: python bench/lut_sessions.py RECORD RECORD [RECORD ...] [--config yolov8s]
       [--imgsz 320] [--backend torch] [--timing in_context] [--tag TAG] [--results DIR]
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _search_common import RESULTS, md_table  # noqa: E402
from lut_accuracy import level_free  # noqa: E402


def load_case(path: str, key: dict[str, Any]) -> dict[str, Any]:
    """The record's one case matching `key` (fields left None match anything) with points in it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: {e}") from None
    cases = [c for c in record.get("cases", []) if c.get("points")
             and all(v is None or c.get(k) == v or (k == "timing" and c.get(k) is None) for k, v in key.items())]
    if len(cases) != 1:
        raise SystemExit(f"{path}: {len(cases)} cases with points match {key}: name the case "
                         "(--config, --imgsz, --backend, --timing)")
    case = cases[0]
    return {"path": path, "points": case["points"], "anchor_at": (case.get("anchor") or {}).get("at"),
            "loadavg": [record.get("loadavg_before"), record.get("loadavg_after")],
            "key": {k: case.get(k) for k in key}}


def pooled(measured: list[list[float]]) -> tuple[list[dict[str, Any]], list[float]]:
    """Every pair of sessions (the later against the earlier, level_free), and each candidate's geometric mean
    over the sessions, each session first brought to the first one's level (its pair with the first)."""
    pairs = [{"a": i, "b": j, **level_free(measured[j], measured[i])}
             for i, j in itertools.combinations(range(len(measured)), 2)]
    levels = [1.0] + [p["level"] for p in pairs if p["a"] == 0]
    together = [math.exp(statistics.fmean(math.log(m[i] / lv) for m, lv in zip(measured, levels)))
                for i in range(len(measured[0]))]
    return pairs, together


def sessions(paths: list[str], key: dict[str, Any]) -> dict[str, Any]:
    """The records joined: pairs of sessions, and the table against each and against all."""
    got = [load_case(p, key) for p in paths]
    first = got[0]["points"]
    for g in got[1:]:
        pts = g["points"]
        if len(pts) != len(first) or any(None not in (a.get("rows"), b.get("rows")) and a["rows"] != b["rows"]
                                         for a, b in zip(pts, first)):  # records before the digests: unchecked
            raise SystemExit(f"{g['path']}: its candidates are not those of {got[0]['path']} (count or rows differ)")
    predicted = [p["predicted_ms"] for p in first]
    moved = max(abs(p["predicted_ms"] / q - 1) for g in got[1:] for p, q in zip(g["points"], predicted)) \
        if len(got) > 1 else 0.0
    measured = [[p["measured_ms"] for p in g["points"]] for g in got]
    pairs, together = pooled(measured)
    return {
        "key": got[0]["key"], "candidates": len(predicted), "predictions_differ_by": moved,
        "checked_by_rows": all("rows" in p for g in got for p in g["points"]),
        "sessions": [{"path": g["path"], "anchor_at": g["anchor_at"], "loadavg": g["loadavg"]} for g in got],
        "pairs": pairs,
        "table": [level_free(predicted, m) for m in measured],
        "table_vs_all": level_free(predicted, together),
    }


def report(r: dict[str, Any]) -> str:
    """The markdown: the sessions, their pairs, the table against each and against all."""
    def name(i: int) -> str:
        return f"{i + 1}: {Path(r['sessions'][i]['path']).stem.removeprefix('lut_accuracy_')}"

    def figs(c: dict[str, float]) -> list[str]:
        return [f"{c['within_5']:.0%}", f"{c['within_10']:.0%}", f"{c['kendall_tau']:.3f}", f"{c['sd_pct']:.2f}%"]

    k = r["key"]
    head = ["within 5%", "within 10%", "Kendall tau", "sd of log ratio"]
    sess = [[name(i), s["anchor_at"] or "-", " → ".join("-" if la is None else f"{la[0]:.2f}" for la in s["loadavg"])]
            for i, s in enumerate(r["sessions"])]
    pairs = [[name(p["b"]), name(p["a"]), f"x{p['level']:.3f}", *figs(p)] for p in r["pairs"]]
    table = [[name(i), f"x{c['level']:.3f}", *figs(c)] for i, c in enumerate(r["table"])]
    table.append(["all sessions together", f"x{r['table_vs_all']['level']:.3f}", *figs(r["table_vs_all"])])
    return (f"One table judged in {len(r['sessions'])} sessions: {k['config']} {k['imgsz']} px {k['backend']} "
            f"({k['timing']}), the same {r['candidates']} candidates (checked by their rows' digests"
            f"{'' if r['checked_by_rows'] else ' where both records have them'}); the "
            f"table's predictions differ between the records by at most {r['predictions_differ_by']:.2%}. "
            "Nothing here is timed: it joins the records.\n\n"
            + md_table(["session", "anchored at (just before the candidates)", "load average before → after"], sess)
            + "\n\nEach pair of sessions, the second against the first with the level between them divided out:\n\n"
            + md_table(["session", "against", "level (session / against)", *head], pairs)
            + "\n\nThe table's prediction against each session and against all of them together (each candidate's "
              "geometric mean over the sessions, each session's median level divided out), at each reference's "
              "own level (divided out; the shares say how well the table's shape fits, not where the device "
              "stood):\n\n"
            + md_table(["reference", "level (predicted / reference)", *head], table))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("records", nargs="+", help="bench/lut_accuracy.py records of the same candidates, oldest first")
    ap.add_argument("--config")
    ap.add_argument("--imgsz", type=int)
    ap.add_argument("--backend")
    ap.add_argument("--timing")
    ap.add_argument("--tag", help="write lut_sessions_TAG.{json,md} (without it: print the report only)")
    ap.add_argument("--results", help="where to write (default bench/results)")
    a = ap.parse_args()
    if len(a.records) < 2:
        raise SystemExit("give two records or more")
    r = sessions(a.records, {"config": a.config, "imgsz": a.imgsz, "backend": a.backend, "timing": a.timing})
    text = report(r)
    print(text)
    if a.tag:
        out = Path(a.results) if a.results else RESULTS
        out.mkdir(parents=True, exist_ok=True)
        (out / f"lut_sessions_{a.tag}.json").write_text(json.dumps(r, indent=2) + "\n")
        (out / f"lut_sessions_{a.tag}.md").write_text(text + "\n")
        print(f"wrote {out / ('lut_sessions_' + a.tag)}.json and .md")


if __name__ == "__main__":
    main()
