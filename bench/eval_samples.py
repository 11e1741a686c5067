#!/usr/bin/python3
"""Evaluates the samples-epochE.npy files a PyTorch twin writes (bench/torch_published.py)
with `gantrain eval --npy`, and appends each result to DIR/eval.jsonl as the "eval"
record gantrain's own runs write to metrics.jsonl, so that scripts/plot_eval.py plots
the twin beside gantrain's runs.

  /usr/bin/python3 bench/eval_samples.py --gantrain ./gantrain --dir /tmp/tp [--follow PID]

Files already in eval.jsonl are skipped. --follow keeps watching for new files until
process PID (the twin) has exited, then evaluates what is left.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--gantrain", required=True, help="the gantrain binary")
p.add_argument("--dir", required=True, help="directory of samples-epochE.npy files")
p.add_argument("--follow", type=int, default=0, help="PID of the twin: watch until it exits")
p.add_argument("--threads", type=int, default=0, help="gantrain eval --threads (0: its default)")
args = p.parse_args()
out_path = os.path.join(args.dir, "eval.jsonl")


def done():
    if not os.path.exists(out_path):
        return set()
    with open(out_path) as f:
        return {json.loads(line)["epoch"] for line in f if line.strip()}


def pending():
    have = done()
    files = []
    for name in os.listdir(args.dir):
        m = re.fullmatch(r"samples-epoch(\d+)\.npy", name)
        if m and int(m.group(1)) not in have:
            files.append((int(m.group(1)), os.path.join(args.dir, name)))
    return sorted(files)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def evaluate(epoch, path):
    cmd = [args.gantrain, "eval", "--npy", path, "--json"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {res.returncode}\n{res.stderr[-2000:]}")
    r = json.loads(res.stdout)["result"]
    rec = {"epoch": epoch, "eval": {
        "parzen_ll": r["parzen"]["ll"], "parzen_se": r["parzen"]["se"], "parzen_sigma": r["parzen"]["sigma"],
        "classifier_score": r["classifier"]["score"], "frechet_distance": r["classifier"]["frechet_distance"],
        "eval_seconds": r["seconds"]}, "samples": path}
    with open(out_path, "a") as f:
        print(json.dumps(rec), file=f)
    e = rec["eval"]
    print(f"epoch {epoch}: Parzen {e['parzen_ll']:.1f} ± {e['parzen_se']:.1f} (σ {e['parzen_sigma']:.3f}), "
          f"score {e['classifier_score']:.2f}, FD {e['frechet_distance']:.1f}", flush=True)


while True:
    following = args.follow and alive(args.follow)
    for epoch, path in pending():
        # A file still being written by a live twin is picked up next round: np.save
        # writes in place, so wait until its size has been stable for a second.
        size = os.path.getsize(path)
        time.sleep(1)
        if following and os.path.getsize(path) != size:
            continue
        evaluate(epoch, path)
    if not following:
        break
    time.sleep(20)
