#!/usr/bin/python3
"""Plots the periodic evaluations of gantrain runs (the "eval" records of their
metrics.jsonl) against epochs: the Parzen-window log-likelihood and the Fréchet
distance, with the paper's 225 and the real-data references of eval/REFERENCE.md.

  /usr/bin/python3 scripts/plot_eval.py --out docs/img/eval-curves.png \\
      "paper config=runs/mnist/metrics.jsonl" "MLP + Adam=runs/mlp/metrics.jsonl"

Needs matplotlib (Debian: python3-matplotlib).
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--out", required=True)
p.add_argument("--title", default="")
p.add_argument("--fd-log", action="store_true", help="Fréchet distance on a log scale")
p.add_argument("--ll-min", type=float, help="lower end of the Parzen axis (to show the late epochs)")
p.add_argument("--epoch-max", type=float, help="plot evaluations up to this epoch only")
p.add_argument("runs", nargs="+", help="label=path of a metrics.jsonl (or a file of its eval records); "
               "label=path#raw plots its raw_ results (G's own parameters, eval.raw_generator)")
args = p.parse_args()

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
for spec in args.runs:
    label, path = spec.split("=", 1)
    prefix = ""
    if path.endswith("#raw"):
        path, prefix = path[: -len("#raw")], "raw_"
    ep, ll, se, fd = [], [], [], []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            e = r.get("eval")
            if not e or prefix + "parzen_ll" not in e or (args.epoch_max is not None and r["epoch"] > args.epoch_max):
                continue
            ep.append(r["epoch"])
            ll.append(e.get(prefix + "parzen_ll"))
            se.append(e.get(prefix + "parzen_se", 0))
            fd.append(e.get(prefix + "frechet_distance"))
    ax1.errorbar(ep, ll, yerr=se, marker="o", ms=3, capsize=2, label=label)
    ax2.plot(ep, fd, marker="o", ms=3, label=label)
ax1.axhline(225, color="k", ls="--", lw=0.8)
ax1.text(0.02, 225, " paper: 225 ± 2", va="top", transform=ax1.get_yaxis_transform())
ax1.axhline(241.19, color="g", ls=":", lw=0.8)
ax1.text(0.02, 241.19, " 10k real training images: 241", va="bottom", color="g", transform=ax1.get_yaxis_transform())
if args.ll_min is not None:
    ax1.set_ylim(bottom=args.ll_min, top=250)
ax1.set_xlabel("epoch")
ax1.set_ylabel("Parzen log-likelihood of the test set (nats)")
ax1.set_title("Parzen window (higher is better)")
ax2.axhline(2.36, color="g", ls=":", lw=0.8)
ax2.text(0.02, 2.36, " real train vs test: 2.4", va="bottom", color="g", transform=ax2.get_yaxis_transform())
ax2.set_xlabel("epoch")
ax2.set_ylabel("Fréchet distance to the test set")
ax2.set_title("Fréchet distance, classifier features (lower is better)")
if args.fd_log:
    ax2.set_yscale("log")
else:
    ax2.set_ylim(bottom=0)
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
if args.title:
    fig.suptitle(args.title)
fig.tight_layout()
fig.savefig(args.out, dpi=110)
print("wrote", args.out)
