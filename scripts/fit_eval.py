#!/usr/bin/python3
"""Extrapolates a run's Parzen curve: fits two saturating models to the periodic
evaluations of a gantrain run (the "eval" records of its metrics.jsonl) from --from
epochs on, and prints each model's asymptote with a residual-bootstrap interval, its
value at later epochs and the epoch where it would reach --target.

  /usr/bin/python3 scripts/fit_eval.py docs/results/gpu-h200-preset-best-seed1-1312ep.eval.jsonl#raw

Models (e in epochs, a the asymptote):
  exponential  a − b·exp(−e/τ)   the gap closes at a fixed rate, as the learning rate
                                 decays (×1.000004⁻¹ per update: e^(−0.002) per epoch)
  power law    a − b·(e/1000)^−c the gap closes ever more slowly
  schedule     a − b·exp(−e/τ)   the exponential with τ fixed by the learning-rate decay
                                 (1/(updates per epoch · ln decay): 500 epochs for the
                                 paper's 1.000004 and 500 updates): the gain proportional
                                 to the learning rate still to be spent, Σ lr from e on.
                                 Where the gain per unit of learning rate has settled
                                 (fit it to a curve's tail, --from), a is where the
                                 schedule lets the curve go; the floor (1e-6) adds a
                                 negligible 0.0005 units per epoch.
The first two fit a curve's middle about equally well and part at its far end; the point is to
show how far apart they are, not to pick one. An extrapolation is not a measurement.
path#raw fits the raw_ results (G's own parameters, eval.raw_generator). --holdout E
tests the models out of sample: fitted to the evaluations up to epoch E, how well does
each predict the rest?
Needs numpy and scipy (Debian: python3-numpy, python3-scipy).
"""
import argparse
import json
import math

import numpy as np
from scipy.optimize import curve_fit

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("run", help="metrics.jsonl or eval records; path#raw for G's own parameters")
p.add_argument("--from", dest="start", type=float, default=300, help="first epoch fitted")
p.add_argument("--target", type=float, default=225, help="Parzen log-likelihood to reach")
p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
p.add_argument("--at", default="2000,3000,5750", help="epochs to print each model at")
p.add_argument("--decay", type=float, default=1.000004, help="learning-rate decay per update (the schedule model)")
p.add_argument("--updates-per-epoch", type=float, default=500, help="updates per epoch (the schedule model)")
p.add_argument("--holdout", type=float, default=0,
               help="fit only the evaluations up to this epoch and score each model's predictions of the later ones")
args = p.parse_args()

path, prefix = args.run, ""
if path.endswith("#raw"):
    path, prefix = path[: -len("#raw")], "raw_"
ep, ll = [], []
with open(path) as f:
    for line in f:
        r = json.loads(line)
        e = r.get("eval") or {}
        if prefix + "parzen_ll" in e and r["epoch"] >= args.start:
            ep.append(r["epoch"])
            ll.append(e[prefix + "parzen_ll"])
if len(ep) < 6:
    raise SystemExit(f"{args.run}: {len(ep)} evaluations from epoch {args.start:g} on; need at least 6")
x, y = np.array(ep, float), np.array(ll, float)
hx, hy = x[x > args.holdout], y[x > args.holdout]
if args.holdout:
    x, y = x[x <= args.holdout], y[x <= args.holdout]
    if len(x) < 6 or len(hx) == 0:
        raise SystemExit(f"--holdout {args.holdout:g}: {len(x)} evaluations to fit and {len(hx)} to predict; need 6 and 1")


def expo(e, a, b, tau):
    with np.errstate(over="ignore"):  # bootstrap trials with a tiny τ; curve_fit rejects them
        return a - b * np.exp(-e / tau)


def power(e, a, b, c):
    return a - b * (e / 1000) ** (-c)


TAU = 1 / (args.updates_per_epoch * math.log(args.decay))


def schedule(e, a, b):
    return expo(e, a, b, TAU)


def reach(f, params, target):
    """The first epoch (to 100,000) where the model reaches target, or None."""
    grid = np.arange(1, 100001, dtype=float)
    hit = np.nonzero(f(grid, *params) >= target)[0]
    return int(grid[hit[0]]) if len(hit) else None


print(f"{path}{' (G own parameters)' if prefix else ''}: {len(x)} evaluations fitted, epochs {x[0]:g}–{x[-1]:g}, "
      f"last {y[-1]:.1f}, best {y.max():.1f} at {x[y.argmax()]:g}"
      + (f"; {len(hx)} held out, epochs {hx[0]:g}–{hx[-1]:g}, mean {hy.mean():.1f}" if args.holdout else ""))
at = [float(a) for a in args.at.split(",") if a]
rng = np.random.default_rng(1)
models = (("exponential", expo, (y.max(), 60, 400)), ("power law", power, (y.max() + 20, 30, 0.5)),
          ("schedule", schedule, (y.max(), 60)))
for name, f, p0 in models:
    try:
        params, _ = curve_fit(f, x, y, p0=p0, maxfev=50000)
    except RuntimeError as err:
        print(f"  {name}: no fit ({err})")
        continue
    res = y - f(x, *params)
    boot = []
    for _ in range(args.boot):
        try:
            pb, _ = curve_fit(f, x, f(x, *params) + rng.choice(res, len(res)), p0=params, maxfev=50000)
            boot.append(pb[0])
        except RuntimeError:
            pass
    lo, hi = np.percentile(boot, [2.5, 97.5])
    e225 = reach(f, params, args.target)
    vals = ", ".join(f"{a:g}: {f(a, *params):.1f}" for a in at)
    print(f"  {name:11s} asymptote {params[0]:.1f} (95% bootstrap {lo:.1f}–{hi:.1f}), residual s.d. {res.std(ddof=len(p0)):.2f}; "
          f"{vals}; reaches {args.target:g} at epoch {e225 if e225 else 'never'}"
          + (f" (τ = {TAU:.0f} epochs)" if f is schedule else "")
          + ("" if math.isfinite(params[0]) else " (diverged)"))
    if args.holdout:
        err = hy - f(hx, *params)
        print(f"  {'':11s} held out: measured − predicted {err.mean():+.2f} on average, RMS {np.sqrt((err ** 2).mean()):.2f}")
