"""Tabular drift scoring (scoring/drift.py) throughput, against a straightforward per-feature baseline.

Measured in one run, on the same synthetic data (a reference and a current window of ROWS x
FEATURES float64 values; a fifth of the features shifted, 1% of the values missing):
- scoring/drift.py: fit the reference (quantile edges + shares), then bin the current window
  and compute PSI and Jensen-Shannon for every feature, each phase timed;
- the baseline, one feature at a time: np.quantile edges, np.digitize + np.bincount for both
  samples, the PSI formula, scipy.spatial.distance.jensenshannon;
- agreement: the largest absolute difference between the two sets of scores (must be ~1e-12);
- optionally (--evidently PATH: a python with evidently installed) evidently's DataDriftPreset
  with PSI and JS stattests on a sample, timed in that interpreter.

Throughput is in values (rows x features) per second of process CPU time, i.e. per core: numpy
runs these operations on one thread.

Run: .venv/bin/python tests/benchmarks/drift.py [--rows 1000000] [--features 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.spatial.distance import jensenshannon

from llmops_operator.scoring import drift


def synthetic(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(rows, features))
    current = rng.normal(size=(rows, features))
    current[:, : features // 5] += 0.6  # a fifth of the features drift (PSI about 0.35)
    current[rng.random(current.shape) < 0.01] = np.nan
    return reference, current


class Timer:
    """Wall and process CPU seconds of a block."""

    def __enter__(self) -> "Timer":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def vectorised(reference: np.ndarray, current: np.ndarray, bins: int) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    timings = {}
    with Timer() as fit:
        fitted = drift.fit_numeric(reference, bins=bins)
    with Timer() as binning:
        shares = drift.numeric_shares(fitted, current)
    with Timer() as scores:
        psi = drift.psi(fitted.shares, shares)
        js = drift.js_distance(fitted.shares, shares)
    for name, timer in (("fit", fit), ("bin", binning), ("score", scores)):
        timings[f"{name}_wall_s"], timings[f"{name}_cpu_s"] = timer.wall, timer.cpu
    return timings, psi, js


def baseline(reference: np.ndarray, current: np.ndarray, bins: int) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """One feature at a time, the way one would write it without thinking about speed."""
    levels = np.linspace(0, 1, bins + 1)[1:-1]
    psi, js = [], []
    fit_timer, score_timer = Timer(), Timer()
    fit_wall = fit_cpu = score_wall = score_cpu = 0.0
    for j in range(reference.shape[1]):
        with fit_timer:
            ref = reference[:, j]
            edges = np.nanquantile(ref, levels)
            ref_index = np.where(np.isnan(ref), bins, np.digitize(ref, edges))
            p = np.bincount(ref_index, minlength=bins + 1) / len(ref)
        with score_timer:
            cur = current[:, j]
            cur_index = np.where(np.isnan(cur), bins, np.digitize(cur, edges))
            q = np.bincount(cur_index, minlength=bins + 1) / len(cur)
            p_s, q_s = np.maximum(p, drift.EPSILON), np.maximum(q, drift.EPSILON)
            p_s, q_s = p_s / p_s.sum(), q_s / q_s.sum()
            psi.append(float(np.sum((q_s - p_s) * np.log(q_s / p_s))))
            js.append(float(jensenshannon(p_s, q_s, base=2)))
        fit_wall, fit_cpu = fit_wall + fit_timer.wall, fit_cpu + fit_timer.cpu
        score_wall, score_cpu = score_wall + score_timer.wall, score_cpu + score_timer.cpu
    timings = {"fit_wall_s": fit_wall, "fit_cpu_s": fit_cpu, "score_wall_s": score_wall, "score_cpu_s": score_cpu}
    return timings, np.array(psi), np.array(js)


EVIDENTLY_SCRIPT = """
import json, sys, time
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
data = np.load(sys.argv[1])
ref = pd.DataFrame(data["reference"], columns=[f"f{i}" for i in range(data["reference"].shape[1])])
cur = pd.DataFrame(data["current"], columns=ref.columns)
out = {}
for test in ("psi", "jensenshannon"):
    start = time.process_time()
    snapshot = Report([DataDriftPreset(method=test)]).run(cur, ref)
    out[test + "_cpu_s"] = time.process_time() - start
    values = {m["config"]["column"]: float(m["value"]) for m in snapshot.dict()["metrics"]
              if m["config"].get("type", "").endswith("ValueDrift")}
    out[test] = [values[c] for c in ref.columns]
print(json.dumps(out))
"""


def evidently(python: str, reference: np.ndarray, current: np.ndarray) -> dict[str, float]:
    """evidently's DataDriftPreset, run in an interpreter that has it, on the given sample."""
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory) / "sample.npz"
        np.savez(data, reference=reference, current=current)
        script = Path(directory) / "run.py"
        script.write_text(EVIDENTLY_SCRIPT)
        done = subprocess.run([python, str(script), str(data)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--bins", type=int, default=drift.DEFAULT_BINS)
    parser.add_argument("--evidently", help="a python interpreter with evidently installed")
    parser.add_argument("--evidently-rows", type=int, default=100_000)
    args = parser.parse_args()
    reference, current = synthetic(args.rows, args.features, seed=11)
    values = args.rows * args.features
    ours, psi, js = vectorised(reference, current, args.bins)
    theirs, psi_base, js_base = baseline(reference, current, args.bins)
    result = {
        "rows": args.rows, "features": args.features, "bins": args.bins,
        "vectorised": {k: round(v, 3) for k, v in ours.items()},
        "baseline": {k: round(v, 3) for k, v in theirs.items()},
        "max_abs_diff": {"psi": float(np.max(np.abs(psi - psi_base))), "js": float(np.max(np.abs(js - js_base)))},
        # Scoring a window against a stored reference is the recurring cost; fitting happens once.
        "score_values_per_cpu_s": {"vectorised": round(values / (ours["bin_cpu_s"] + ours["score_cpu_s"])),
                                   "baseline": round(values / theirs["score_cpu_s"])},
        "fit_values_per_cpu_s": {"vectorised": round(values / ours["fit_cpu_s"]),
                                 "baseline": round(values / theirs["fit_cpu_s"])},
        "drifted_features": int(np.sum(psi > 0.2)), "expected_drifted": args.features // 5,
    }
    result["score_speedup"] = round(result["score_values_per_cpu_s"]["vectorised"]
                                    / result["score_values_per_cpu_s"]["baseline"], 2)
    if args.evidently:
        sample = slice(0, args.evidently_rows)
        reference_sample, current_sample = reference[sample], current[sample]
        with Timer() as ours_sample:
            fitted = drift.fit_numeric(reference_sample, bins=args.bins)
            ours_psi = np.array(list(drift.numeric_drift(fitted, current_sample, "psi").values()))
            ours_js = np.array(list(drift.numeric_drift(fitted, current_sample, "js").values()))
        theirs_run = evidently(args.evidently, reference_sample, current_sample)
        # Evidently bins differently (its own bin edges and missing-value handling): compare the verdicts.
        result["evidently"] = {
            "rows": args.evidently_rows, "psi_cpu_s": round(theirs_run["psi_cpu_s"], 3),
            "js_cpu_s": round(theirs_run["jensenshannon_cpu_s"], 3),
            "ours_fit_and_both_scores_cpu_s": round(ours_sample.cpu, 3),
            "psi_max_abs_diff": float(np.max(np.abs(ours_psi - np.array(theirs_run["psi"])))),
            "js_max_abs_diff": float(np.max(np.abs(ours_js - np.array(theirs_run["jensenshannon"])))),
            "drifted_psi_over_0.2": {"ours": int(np.sum(ours_psi > 0.2)),
                                     "evidently": int(np.sum(np.array(theirs_run["psi"]) > 0.2))},
        }
    agree = result["max_abs_diff"]["psi"] < 1e-9 and result["max_abs_diff"]["js"] < 1e-9
    print(json.dumps(result, indent=2))
    if not agree:
        print("the vectorised scores disagree with the baseline", file=sys.stderr)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
