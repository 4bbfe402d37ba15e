#!/usr/bin/env python3
"""Reference evaluation for swarmpilot load forecasters (NAB dev set).

Computes MASE at horizons 1, 6, 12 for
  * snaive : seasonal naive, season m detected by ACF at each origin (m=1 -> naive)
  * sm_holt: statsmodels ExponentialSmoothing(trend='add', damped_trend=True).fit()
             refitted at each origin (default optimizer, default init)
and optionally scores forecast CSVs produced by our forecaster (Python prototype
or the Rust CLI) with exactly the same origins and scaling.

Protocol (all deterministic):
  * series y[0..n-1] = column `value` of each CSV (timestamps ignored, row index = time)
  * warm-up W = ceil(0.15 * n); K = 40 origins t_k = W-1 + round(k*(n-13-(W-1))/(K-1)),
    k = 0..K-1 (deduplicated); training data at origin t = rows 0..t
  * baselines are fitted on the trailing window rows max(0, t-N+1)..t, N = 2000
  * forecasts for t+h, h = 1..12; scored at h in {1, 6, 12}
  * scale_t = mean_{i=1..t} |y[i] - y[i-1]| (in-sample one-step naive MAE on rows 0..t)
  * per file: MASE_h = mean over origins of |y[t+h] - f_h(t)| / scale_t
  * files whose scale_t == 0 at any origin (art_flatline) are excluded from the MASE
    averages; for them the max absolute error is reported instead
  * table: mean and median over the remaining files

Usage:
  python3 reference.py                       # baselines table (cached in ./ref_cache.json)
  python3 reference.py --ours DIR [--ours NAME=DIR ...]
        DIR holds one CSV per series, same base name as the input file, with columns
        timestamp,value,f1..f12 (row t: forecasts made from rows 0..t for t+1..t+12;
        empty cells while warming up). Only rows at the chosen origins are read.
  options: --data DIR (default ../shared/nab/data beside the repository), --no-cache, --per-file,
           --full-history (statsmodels fitted on rows 0..t instead of trailing 2000)
"""
import argparse
import csv
import glob
import json
import math
import os
import subprocess
import sys
import warnings

HORIZONS = (1, 6, 12)
HMAX = 12
K_ORIGINS = 40
WINDOW = 2000
WARM_FRAC = 0.15


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def ensure_packages():
    try:
        import numpy  # noqa
        import statsmodels  # noqa
    except ImportError:
        log("installing numpy/statsmodels with pip ...")
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "numpy", "statsmodels"])


ensure_packages()
import numpy as np  # noqa: E402


# ---------------------------------------------------------------- data / protocol
def list_files(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "*", "*.csv")))


def load_values(path):
    vals = []
    with open(path, newline="") as fh:
        r = csv.DictReader(fh)
        for row in r:
            vals.append(float(row["value"]))
    return np.asarray(vals, dtype=float)


def origins_for(n):
    W = math.ceil(WARM_FRAC * n)
    lo, hi = W - 1, n - 1 - HMAX
    out = []
    for k in range(K_ORIGINS):
        t = lo + int(round(k * (hi - lo) / (K_ORIGINS - 1)))
        if not out or t != out[-1]:
            out.append(t)
    return out


def scale_at(y, t):
    return float(np.mean(np.abs(np.diff(y[: t + 1])))) if t >= 1 else 0.0


# ---------------------------------------------------------------- season detection
def acf(x, lmax):
    """biased sample autocorrelation r[k] = sum_{i<n-k} d_i d_{i+k} / sum_i d_i^2, d = x - mean(x)"""
    x = np.asarray(x, float) - np.mean(x)
    d = float(np.dot(x, x))
    n = len(x)
    if d <= 0.0:
        return np.zeros(lmax + 1)
    return np.array([float(np.dot(x[: n - k], x[k:])) / d for k in range(lmax + 1)])


def detect_season(x, max_lag=1000, min_acf=0.3, min_prom=0.1):
    """Season length by autocorrelation. x: trailing window of the series (<= 2000 rows).
    lmax = min(len(x)//2, max_lag); candidates: lags k in [2, lmax-1] with
    r[k] > r[k-1], r[k] >= r[k+1], r[k] >= min_acf and r[k] - min(r[1..k]) >= min_prom.
    Return the candidate with the largest r[k] (smallest k on ties); 1 when none."""
    n = len(x)
    lmax = min(n // 2, max_lag)
    if lmax < 4:
        return 1
    r = acf(x, lmax)
    best, bestv = 1, -np.inf
    runmin = r[1]
    for k in range(2, lmax):
        runmin = min(runmin, r[k])
        if r[k] > r[k - 1] and r[k] >= r[k + 1] and r[k] >= min_acf and r[k] - runmin >= min_prom:
            if r[k] > bestv:
                best, bestv = k, r[k]
    return best


# ---------------------------------------------------------------- baselines
def snaive_forecast(y, t, m):
    """f_h = y[t + h - m*ceil(h/m)]"""
    return np.array([y[t + h - m * math.ceil(h / m)] for h in range(1, HMAX + 1)])


def sm_holt_forecast(train):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = ExponentialSmoothing(train, trend="add", damped_trend=True).fit()
            f = np.asarray(fit.forecast(HMAX), float)
            if np.all(np.isfinite(f)):
                return f, True
        except Exception as e:  # noqa
            log("  statsmodels failed:", e)
    return np.full(HMAX, train[-1]), False


def baseline_errors(y, full_history=False):
    """returns dict method -> list over origins of [|e_1|,...,|e_12|]/... raw abs errors
    plus scales and seasons"""
    res = {"origins": [], "scale": [], "m": [], "snaive": [], "sm_holt": [], "sm_fail": 0}
    for t in origins_for(len(y)):
        lo = 0 if full_history else max(0, t - WINDOW + 1)
        train = y[lo: t + 1]
        m = detect_season(train)
        fs = snaive_forecast(y, t, m)
        fh, ok = sm_holt_forecast(train)
        truth = y[t + 1: t + 1 + HMAX]
        res["origins"].append(t)
        res["scale"].append(scale_at(y, t))
        res["m"].append(m)
        res["snaive"].append(np.abs(truth - fs).tolist())
        res["sm_holt"].append(np.abs(truth - fh).tolist())
        res["sm_fail"] += 0 if ok else 1
    return res


# ---------------------------------------------------------------- scoring ours
def read_forecast_csv(path, n):
    """returns array (n, HMAX) with NaN where empty"""
    F = np.full((n, HMAX), np.nan)
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        header = next(r)
        idx = [header.index("f%d" % h) for h in range(1, HMAX + 1)]
        for i, row in enumerate(r):
            if i >= n:
                break
            for j, c in enumerate(idx):
                if c < len(row) and row[c].strip() != "":
                    F[i, j] = float(row[c])
    return F


def ours_errors(y, F, origins):
    out = []
    missing = 0
    for t in origins:
        f = F[t]
        if np.any(~np.isfinite(f)):
            missing += 1
            f = np.where(np.isfinite(f), f, y[t])  # penalise as naive
        out.append(np.abs(y[t + 1: t + 1 + HMAX] - f).tolist())
    return out, missing


# ---------------------------------------------------------------- tables
def mase_per_file(errs, scales):
    e = np.asarray(errs)  # (K, 12)
    s = np.asarray(scales)
    return {h: float(np.mean(e[:, h - 1] / s)) for h in HORIZONS}


def print_table(per_file, methods, excluded, show_files=False, out=sys.stdout):
    names = sorted(per_file)
    if show_files:
        print("%-40s " % "file" + " ".join("%12s" % ("%s@%d" % (m[:8], h)) for m in methods for h in HORIZONS), file=out)
        for nm in names:
            print("%-40s " % nm[:40] + " ".join("%12.4f" % per_file[nm][m][h] for m in methods for h in HORIZONS), file=out)
        print(file=out)
    print("MASE over %d files (excluded: %s)" % (len(names), ", ".join(excluded) or "none"), file=out)
    print("%-14s %9s %9s %9s   %9s %9s %9s" % ("method", "mean@1", "mean@6", "mean@12", "med@1", "med@6", "med@12"), file=out)
    for m in methods:
        means = [np.mean([per_file[nm][m][h] for nm in names]) for h in HORIZONS]
        meds = [np.median([per_file[nm][m][h] for nm in names]) for h in HORIZONS]
        print("%-14s %9.4f %9.4f %9.4f   %9.4f %9.4f %9.4f" % ((m,) + tuple(means) + tuple(meds)), file=out)


def main():
    ap = argparse.ArgumentParser()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--data", default=os.path.join(repo, "..", "shared", "nab", "data"))
    ap.add_argument("--ours", action="append", default=[], help="DIR or NAME=DIR")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--full-history", action="store_true")
    ap.add_argument("--per-file", action="store_true")
    ap.add_argument("--cache", default=None)
    args = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    cache_path = args.cache or os.path.join(here, "..", "target", "forecast-reference-cache%s.json" % ("_full" if args.full_history else ""))
    cache = {}
    if not args.no_cache and os.path.exists(cache_path):
        with open(cache_path) as fh:
            cache = json.load(fh)

    files = list_files(args.data)
    if not files:
        sys.exit("no CSV files under %s" % args.data)
    ours = []
    for spec in args.ours:
        if "=" in spec:
            nm, d = spec.split("=", 1)
        else:
            nm, d = os.path.basename(os.path.normpath(spec)), spec
        ours.append((nm, d))
    methods = ["snaive", "sm_holt"] + [nm for nm, _ in ours]

    per_file, excluded = {}, []
    flat_report = []
    for i, path in enumerate(files):
        base = os.path.basename(path)
        y = load_values(path)
        key = base
        if key in cache and cache[key].get("n") == len(y):
            res = cache[key]
        else:
            log("[%d/%d] %s (n=%d): fitting baselines at %d origins ..." % (i + 1, len(files), base, len(y), len(origins_for(len(y)))))
            res = baseline_errors(y, args.full_history)
            res["n"] = len(y)
            cache[key] = res
            if not args.no_cache:
                with open(cache_path, "w") as fh:
                    json.dump(cache, fh)
        errs = {"snaive": res["snaive"], "sm_holt": res["sm_holt"]}
        for nm, d in ours:
            fp = os.path.join(d, base)
            if not os.path.exists(fp):
                log("  missing forecast file %s -> scored as naive" % fp)
                F = np.full((len(y), HMAX), np.nan)
            else:
                F = read_forecast_csv(fp, len(y))
            e, miss = ours_errors(y, F, res["origins"])
            if miss:
                log("  %s/%s: %d origins without forecasts (scored as naive)" % (nm, base, miss))
            errs[nm] = e
        if min(res["scale"]) <= 0:
            excluded.append(base)
            flat_report.append((base, {m: float(np.max(errs[m])) for m in methods}))
            continue
        per_file[base] = {m: mase_per_file(errs[m], res["scale"]) for m in methods}
        per_file[base]["_m"] = res["m"]

    print_table(per_file, methods, excluded, show_files=args.per_file)
    for base, d in flat_report:
        print("excluded %s: max abs error %s" % (base, ", ".join("%s=%.3g" % kv for kv in d.items())))
    if args.per_file:
        print("\ndetected seasons at origins (first, mid, last):")
        for nm in sorted(per_file):
            mm = per_file[nm]["_m"]
            print("  %-40s %s" % (nm[:40], (mm[0], mm[len(mm) // 2], mm[-1])))
    nfail = sum(cache[k].get("sm_fail", 0) for k in cache)
    if nfail:
        print("statsmodels fits that failed (scored as naive): %d" % nfail)


if __name__ == "__main__":
    main()
