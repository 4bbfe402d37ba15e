#!/usr/bin/env python3
"""Leave-one-category-out (LOCO) score of `swarmpilot detect` on the NAB development set.

For each of the set's categories in turn, every free parameter of the detector (the grid
below) and the score threshold are chosen using only the other categories; the held-out
category is then scored with that choice. The held-out raw scores are summed and normalised
once over all windows, as NAB combines the files of its corpus. The tuned figure (parameters
and threshold chosen on every category) is printed beside it for comparison.

Run by `scripts/nab-score --loco`, which builds the release binary first. Standard library
only; the scoring itself is ../shared/nab/score.py's, imported.
Usage: nab-loco.py BINARY NAB_DIR WORK_DIR
"""
import importlib.util
import itertools
import json
import os
import subprocess
import sys

# The free parameters and the values tried. Everything else in DetectorConfig is fixed by
# reasoning that does not depend on these files (see DetectorConfig's documentation).
GRID = {
    "hold_after_detection": [50, 100, 200],
    "likelihood_window": [10, 20, 40],
    "likelihood_weight": [0.001, 0.003, 0.01],
}
PROFILES = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]


def load_scorer(nab):
    spec = importlib.util.spec_from_file_location("nab_score", os.path.join(nab, "score.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configs():
    names = sorted(GRID)
    for values in itertools.product(*(GRID[n] for n in names)):
        yield dict(zip(names, values))


def label(config):
    return ",".join(f"{k}={v}" for k, v in sorted(config.items()))


def run_detector(binary, nab, keys, config, out_dir, done, total):
    for n, key in enumerate(keys, 1):
        output = os.path.join(out_dir, key)
        os.makedirs(os.path.dirname(output), exist_ok=True)
        if os.path.exists(output):
            continue
        args = [binary, "detect", "--allow-unsorted", "--input", os.path.join(nab, "data", key),
                "--output", output + ".part"]
        for k, v in sorted(config.items()):
            args += ["--set", f"{k}={v}"]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(output + ".part", output)
    print(f"[{done}/{total}] detected with {label(config)}", file=sys.stderr, flush=True)


def file_rows(scorer, times, scores, key, windows, weights):
    return list(scorer.rows_of_file(times, scores, windows[key], key, weights))


def raw_at(rows, n_windows, threshold, fn_w):
    """The raw NAB score of `rows` when every row scoring at least `threshold` is a detection."""
    fp_total, best = 0.0, {}
    for score, value, key in rows:
        if score < threshold:
            continue
        if key is None:
            fp_total += value
        else:
            best[key] = max(best.get(key, -fn_w), value)
    return fp_total + sum(best.values()) - (n_windows - len(best)) * fn_w


def normalised(raw, n_windows, tp_w, fn_w):
    base, perfect = -n_windows * fn_w, n_windows * tp_w
    return 100.0 * (raw - base) / (perfect - base) if perfect > base else float("nan")


def main():
    binary, nab, work = sys.argv[1:4]
    scorer = load_scorer(nab)
    with open(os.path.join(nab, "windows.json")) as f:
        windows = json.load(f)
    keys = sorted(windows)
    categories = sorted({k.split("/")[0] for k in keys})
    all_configs = list(configs())
    # Each data file's timestamps, parsed once for every detector and profile.
    times = {k: [scorer.parse_time(t) for t in
                 scorer.read_column(os.path.join(nab, "data", k), "timestamp")] for k in keys}
    # rows[profile][config index][category] = (rows, windows in the category)
    rows = {p: [] for p in PROFILES}
    for i, config in enumerate(all_configs, 1):
        out_dir = os.path.join(work, label(config).replace("=", "_"))
        run_detector(binary, nab, keys, config, out_dir, i, len(all_configs))
        scores = {k: [float(v) for v in scorer.read_column(os.path.join(out_dir, k),
                                                          "anomaly_score")] for k in keys}
        for profile in PROFILES:
            weights = scorer.PROFILES[profile]
            by_category = {}
            for c in categories:
                cat_keys = [k for k in keys if k.split("/")[0] == c]
                r = [row for k in cat_keys
                     for row in file_rows(scorer, times[k], scores[k], k, windows, weights)]
                by_category[c] = (r, sum(len(windows[k]) for k in cat_keys))
            rows[profile].append(by_category)

    report = {}
    for profile in PROFILES:
        tp_w, _, fn_w = scorer.PROFILES[profile]

        def best_on(cats):
            """(normalised score, config index, threshold) best over `cats`."""
            best = None
            for i, by_category in enumerate(rows[profile]):
                r = [row for c in cats for row in by_category[c][0]]
                n = sum(by_category[c][1] for c in cats)
                raw, threshold = scorer.best_threshold(r, n, fn_w)
                candidate = (normalised(raw, n, tp_w, fn_w), -i, threshold)
                if best is None or candidate > best:
                    best = candidate
            return best[0], -best[1], best[2]

        tuned, tuned_config, tuned_threshold = best_on(categories)
        held_raw, held_windows, folds = 0.0, 0, []
        for c in categories:
            train = [x for x in categories if x != c]
            train_score, chosen, threshold = best_on(train)
            r, n = rows[profile][chosen][c]
            raw = raw_at(r, n, threshold, fn_w)
            held_raw += raw
            held_windows += n
            folds.append({"held_out": c, "config": label(all_configs[chosen]),
                          "threshold": threshold, "train_score": train_score,
                          "held_out_raw": raw, "windows": n,
                          "held_out_score": normalised(raw, n, tp_w, fn_w)})
        report[profile] = {
            "tuned": tuned, "tuned_config": label(all_configs[tuned_config]),
            "tuned_threshold": tuned_threshold,
            "loco": normalised(held_raw, held_windows, tp_w, fn_w), "folds": folds,
        }

    for profile in PROFILES:
        r = report[profile]
        print(f"\n{profile}: held-out (LOCO) {r['loco']:.2f}, tuned {r['tuned']:.2f} "
              f"({r['tuned_config']}, threshold {r['tuned_threshold']:.4g})")
        print("| held-out category | windows | parameters chosen on the other three | "
              "threshold | score on the three | held-out raw | held-out score |")
        print("|---|---|---|---|---|---|---|")
        for fold in r["folds"]:
            score = fold["held_out_score"]
            shown = "n/a (no windows)" if score != score else f"{score:.2f}"
            print(f"| {fold['held_out']} | {fold['windows']} | {fold['config']} | "
                  f"{fold['threshold']:.4g} | {fold['train_score']:.2f} | "
                  f"{fold['held_out_raw']:.2f} | {shown} |")
    with open(os.path.join(work, "loco.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
