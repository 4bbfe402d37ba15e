#!/usr/bin/env python3
"""Reference evaluation for swarmpilot load forecasters (NAB dev set), issue 23's protocol.

Computes MASE at horizons 1, 6, 12 for
  * snaive : seasonal naive, season m detected by ACF at each origin (m=1 -> naive)
  * sm_holt: statsmodels ExponentialSmoothing(trend='add', damped_trend=True).fit()
             refitted at each origin (default optimizer, default init) -- "damped Holt"
and optionally scores forecast CSVs produced by our forecaster (Python prototype
or the Rust CLI) with exactly the same origins and scaling.

Protocol (issue 23; all deterministic; PROTOCOL below names it and keys the cache):
  * series y[0..n-1] = column `value` of each CSV in file order (timestamps ignored,
    row index = time); half = floor(n/2); the first half is rows 0..half-1
  * origins: t = half-1 (the last row of the first half, so the first forecast target is
    the first row of the second half), then every 50 rows, t = half-1 + 50k, while
    t + 12 <= n-1 (every horizon up to 12 has a truth value)
  * forecasts for t+h, h = 1..12, made from rows 0..t; scored at h in {1, 6, 12}
  * baselines at origin t are fitted on the last 1,000 points up to and including the
    origin, rows max(0, t-999)..t (the season of snaive is detected on the same window);
    a statsmodels fit that raises or forecasts a non-finite value is replaced by the naive
    forecast y[t] and counted as a failure
  * scale (one per series) = mean_{i=1..half-1} |y[i] - y[i-1]|, the mean absolute one-step
    difference of the series' first half
  * per series: MASE_h = mean over origins of |y[t+h] - f_h(t)| / scale
  * series whose scale == 0 (art_flatline) are excluded from the MASE averages; for them
    the max absolute error over origins and horizons is reported instead
  * figure: mean over the remaining series (median also printed) for each method at each h;
    for every --ours method, the ratio of its mean MASE to sm_holt's mean MASE at each h and
    whether issue 23's target (ratio <= 0.85) is met

Usage:
  python3 forecast-reference.py                       # baselines table (cached)
  python3 forecast-reference.py --ours DIR [--ours NAME=DIR ...]
        DIR holds one CSV per series, same base name as the input file, with columns
        timestamp,value,f1..f12 (row t: forecasts made from rows 0..t for t+1..t+12;
        empty cells while warming up; an origin with an empty cell is scored as naive and
        reported). Only rows at the chosen origins are read.
  options: --data DIR (default ../shared/nab/data beside the repository), --no-cache, --per-file,
           --cache FILE (default target/forecast-reference-cache-<PROTOCOL>.json; a cache
           written under another protocol is discarded),
           --full-history (statsmodels fitted on rows 0..t instead of the trailing 1,000:
           not issue 23's protocol, kept for comparison; cached under its own protocol key)
"""
import argparse
import csv
import glob
import hashlib
import json
import math
import os
import subprocess
import sys
import warnings

HORIZONS = (1, 6, 12)
HMAX = 12
ORIGIN_STEP = 50
WINDOW = 1000
TARGET_RATIO = 0.85
# Names the protocol; part of the default cache file name and stored in the cache, so
# baselines computed under another protocol are never reused. Bump on any protocol change.
PROTOCOL = "issue23-v1"


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
    """t = floor(n/2)-1, then every ORIGIN_STEP rows, while t + HMAX <= n-1"""
    return list(range(n // 2 - 1, n - HMAX, ORIGIN_STEP))


def series_scale(y):
    """mean |y[i] - y[i-1]| for i in 1..floor(n/2)-1 (the first half, rows 0..floor(n/2)-1)"""
    first = y[: len(y) // 2]
    return float(np.mean(np.abs(np.diff(first)))) if len(first) >= 2 else 0.0


def series_digest(y):
    return hashlib.sha1(np.ascontiguousarray(y, dtype=float).tobytes()).hexdigest()[:16]


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
    """Season length by autocorrelation. x: trailing window of the series (<= WINDOW rows).
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
    """returns dict method -> list over origins of raw abs errors [|e_1|,...,|e_12|],
    plus the origins, the series' scale, the detected seasons and the failed fits"""
    res = {"origins": [], "scale": series_scale(y), "m": [], "snaive": [], "sm_holt": [], "sm_fail": 0}
    for t in origins_for(len(y)):
        lo = 0 if full_history else max(0, t - WINDOW + 1)
        train = y[lo: t + 1]
        m = detect_season(train)
        fs = snaive_forecast(y, t, m)
        fh, ok = sm_holt_forecast(train)
        truth = y[t + 1: t + 1 + HMAX]
        res["origins"].append(t)
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
def mase_per_file(errs, scale):
    e = np.asarray(errs)  # (origins, 12)
    return {h: float(np.mean(e[:, h - 1] / scale)) for h in HORIZONS}


def print_table(per_file, methods, ours, excluded, show_files=False, out=sys.stdout):
    names = sorted(per_file)
    if show_files:
        print("%-40s %7s " % ("file", "origins") + " ".join("%12s" % ("%s@%d" % (m[:8], h)) for m in methods for h in HORIZONS), file=out)
        for nm in names:
            print("%-40s %7d " % (nm[:40], per_file[nm]["_k"]) + " ".join("%12.4f" % per_file[nm][m][h] for m in methods for h in HORIZONS), file=out)
        print(file=out)
    print("protocol %s: origins from floor(n/2)-1 every %d rows, baselines on the last %d points, "
          "scale = first-half mean |diff|" % (PROTOCOL, ORIGIN_STEP, WINDOW), file=out)
    print("MASE over %d series, %d origins (excluded: %s)"
          % (len(names), sum(per_file[nm]["_k"] for nm in names), ", ".join(excluded) or "none"), file=out)
    print("%-14s %9s %9s %9s   %9s %9s %9s" % ("method", "mean@1", "mean@6", "mean@12", "med@1", "med@6", "med@12"), file=out)
    means = {}
    for m in methods:
        means[m] = [float(np.mean([per_file[nm][m][h] for nm in names])) for h in HORIZONS]
        meds = [np.median([per_file[nm][m][h] for nm in names]) for h in HORIZONS]
        print("%-14s %9.4f %9.4f %9.4f   %9.4f %9.4f %9.4f" % ((m,) + tuple(means[m]) + tuple(meds)), file=out)
    if ours:
        print(file=out)
        print("mean MASE / sm_holt mean MASE (target <= %.2f at each h)" % TARGET_RATIO, file=out)
        print("%-14s %9s %9s %9s   %s" % ("method", "ratio@1", "ratio@6", "ratio@12", "target met @1/@6/@12"), file=out)
        for m in ours:
            r = [means[m][j] / means["sm_holt"][j] for j in range(len(HORIZONS))]
            met = ["yes" if x <= TARGET_RATIO else "no" for x in r]
            print("%-14s %9.4f %9.4f %9.4f   %s%s" % ((m,) + tuple(r) + ("/".join(met),
                  "  -> target met" if all(x <= TARGET_RATIO for x in r) else "  -> target not met")), file=out)


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
    protocol = PROTOCOL + ("-full-history" if args.full_history else "")
    cache_path = args.cache or os.path.join(here, "..", "target", "forecast-reference-cache-%s.json" % protocol)
    cache = {"protocol": protocol, "series": {}}
    if not args.no_cache and os.path.exists(cache_path):
        with open(cache_path) as fh:
            old = json.load(fh)
        if isinstance(old, dict) and old.get("protocol") == protocol and isinstance(old.get("series"), dict):
            cache = old
        else:
            log("cache %s was written under protocol %r, not %r: recomputing the baselines"
                % (cache_path, old.get("protocol") if isinstance(old, dict) else None, protocol))
    series_cache = cache["series"]

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
    nfail, nfits = 0, 0
    for i, path in enumerate(files):
        base = os.path.basename(path)
        y = load_values(path)
        key = base
        digest = series_digest(y)
        if key in series_cache and series_cache[key].get("n") == len(y) and series_cache[key].get("digest") == digest:
            res = series_cache[key]
        else:
            log("[%d/%d] %s (n=%d): fitting baselines at %d origins ..." % (i + 1, len(files), base, len(y), len(origins_for(len(y)))))
            res = baseline_errors(y, args.full_history)
            res["n"] = len(y)
            res["digest"] = digest
            series_cache[key] = res
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
        nfail += res["sm_fail"]
        nfits += len(res["origins"])
        if res["sm_fail"]:
            log("  %s: %d of %d statsmodels fits failed (scored as naive)" % (base, res["sm_fail"], len(res["origins"])))
        if res["scale"] <= 0:
            excluded.append(base)
            flat_report.append((base, {m: float(np.max(errs[m])) for m in methods}))
            continue
        per_file[base] = {m: mase_per_file(errs[m], res["scale"]) for m in methods}
        per_file[base]["_m"] = res["m"]
        per_file[base]["_k"] = len(res["origins"])

    print_table(per_file, methods, [nm for nm, _ in ours], excluded, show_files=args.per_file)
    for base, d in flat_report:
        print("excluded %s: max abs error %s" % (base, ", ".join("%s=%.3g" % kv for kv in d.items())))
    if args.per_file:
        print("\ndetected seasons at origins (first, mid, last):")
        for nm in sorted(per_file):
            mm = per_file[nm]["_m"]
            print("  %-40s %s" % (nm[:40], (mm[0], mm[len(mm) // 2], mm[-1])))
    print("statsmodels fits that failed (scored as naive): %d of %d" % (nfail, nfits))


if __name__ == "__main__":
    main()
