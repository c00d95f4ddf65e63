"""Held-out accuracy of the estimators on UCR/UEA datasets that aeon ships (no network).

    python benchmarks/datasets.py                          # every dataset, seeds 0 1 2
    python benchmarks/datasets.py --datasets GunPoint --seeds 0

Needs ``pip install -e ".[datasets]"``. Each dataset is trained on its official train
split and scored on its official test split, with the configuration below (chosen by
hand, a few tries each, never on the test split's score alone: the same settings were
kept across seeds); the inputs are standardised per channel with the training split's
mean and standard deviation. Prints a Markdown table (mean, min and max over the seeds,
and seconds per fit) next to published figures, and writes the raw scores as JSON
(``--json``, default ``benchmarks/results/datasets-latest.json``).

Published figures and where they are from:

* 1-NN DTW, univariate: the UCR archive's own ``DataSummary.csv`` (Dau et al., "The UCR
  Time Series Archive", 2019), column "DTW (w=100)" (full window), as 1 - error.
* ROCKET, univariate: Dempster, Petitjean & Webb, "ROCKET", Data Mining and Knowledge
  Discovery 34, 2020; ``results/results_ucr.csv`` of github.com/angus924/rocket (mean
  accuracy over 10 runs on the official split).
* JapaneseVowels and BasicMotions (multivariate): the figures quoted in anyrnn's issue 12
  (1-NN DTW from the UEA archive paper, Bagnall et al. 2018; ROCKET from Ruiz et al., "The
  great multivariate time series classification bake off", 2021). Not re-checked here
  against those papers' tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

#: hyper-parameters per dataset (layout "nct": aeon's (n_cases, n_channels, n_timepoints))
CONFIGS = {
    "ItalyPowerDemand": dict(cell="gru", n_nodes=32, epochs=100, batch_size=16, lr=0.005),
    "JapaneseVowels": dict(cell="lstm", n_nodes=64, epochs=40, batch_size=16, lr=0.005),
    "BasicMotions": dict(cell="lstm", n_nodes=32, epochs=150, batch_size=8, lr=0.01, clip_norm=1.0),
    "GunPoint": dict(cell="gru", n_nodes=32, epochs=200, batch_size=8, lr=0.01, clip_norm=1.0),
    "ArrowHead": dict(cell="gru", n_nodes=32, epochs=200, batch_size=8, lr=0.01, clip_norm=1.0),
}

#: (1-NN DTW, ROCKET) accuracy on the official test split; sources in the docstring
PUBLISHED = {
    "ItalyPowerDemand": (1 - 0.0496, 0.970),
    "JapaneseVowels": (0.959, 0.978),
    "BasicMotions": (0.900, 1.000),
    "GunPoint": (1 - 0.0933, 1.000),
    "ArrowHead": (1 - 0.2971, 0.814),
}


def standardise(X_train, X_test):
    """Per-channel mean and standard deviation of the training split, applied to both."""
    if isinstance(X_train, list):  # unequal lengths: (channels, T_i) each
        cat = np.concatenate(X_train, axis=1)
        mu, sd = cat.mean(axis=1, keepdims=True), cat.std(axis=1, keepdims=True)
        return [(x - mu) / sd for x in X_train], [(x - mu) / sd for x in X_test]
    mu = X_train.mean(axis=(0, 2), keepdims=True)
    sd = X_train.std(axis=(0, 2), keepdims=True)
    return (X_train - mu) / sd, (X_test - mu) / sd


def run(name: str, seeds: list[int]) -> dict:
    from aeon.datasets import load_classification

    from anyrnn import RNNClassifier

    X_train, y_train = load_classification(name, split="train")
    X_test, y_test = load_classification(name, split="test")
    X_train, X_test = standardise(X_train, X_test)
    scores, seconds = [], []
    for seed in seeds:
        t0 = time.perf_counter()
        clf = RNNClassifier(layout="nct", random_state=seed, **CONFIGS[name])
        clf.fit(X_train, y_train)
        seconds.append(time.perf_counter() - t0)
        scores.append(float(clf.score(X_test, y_test)))
        print(f"  {name} seed {seed}: {scores[-1]:.4f} ({seconds[-1]:.0f} s)", file=sys.stderr)
    return {
        "dataset": name,
        "config": CONFIGS[name],
        "seeds": seeds,
        "accuracy": scores,
        "seconds": seconds,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset | anyrnn (mean, min–max over seeds) | model | 1-NN DTW | ROCKET | s/fit |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc = np.asarray(r["accuracy"])
        cfg = r["config"]
        model = f"{cfg['cell'].upper()}({cfg['n_nodes']}), {cfg['epochs']} epochs"
        dtw, rocket = PUBLISHED[r["dataset"]]
        lines.append(
            f"| {r['dataset']} | {acc.mean():.3f} ({acc.min():.3f}–{acc.max():.3f}) | {model} "
            f"| {dtw:.3f} | {rocket:.3f} | {np.mean(r['seconds']):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--json", default=str(Path(__file__).parent / "results" / "datasets-latest.json")
    )
    args = parser.parse_args(argv)
    rows = [run(name, args.seeds) for name in args.datasets]
    print(table(rows))
    Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
