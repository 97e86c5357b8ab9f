#!/usr/bin/env python3
"""Sum a torch autograd-profiler chrome trace (bench/decode_bench --profile) per op name.

    profile_summary.py TRACE.json [--top 25]
"""
import argparse
import collections
import json


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    with open(args.trace) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    total = collections.Counter()
    count = collections.Counter()
    for e in events:
        if e.get("ph") == "X":
            total[e["name"]] += e.get("dur", 0)
            count[e["name"]] += 1
    print(f"{'op':40s} {'calls':>8s} {'ms (incl. children)':>20s}")
    for name, us in total.most_common(args.top):
        print(f"{name[:40]:40s} {count[name]:8d} {us / 1000:20.1f}")


if __name__ == "__main__":
    main()
