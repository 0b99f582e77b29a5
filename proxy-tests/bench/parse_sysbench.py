#!/usr/bin/env python3
"""Reads `sysbench ... --histogram=on run` output on stdin and prints one line:
`qps p95_ms queries errors events tps`.

p95 comes from the latency histogram (per event: a query for oltp_point_select, a
transaction for the other tests) with 3 decimals; sysbench's own "95th percentile"
line is rounded to 2 decimals, too coarse for a 0.05 ms target.
"""
import re
import sys

text = sys.stdin.read()
hist = []
for m in re.finditer(r"^\s*([0-9.]+) \|[\s*]*?(\d+)\s*$", text, re.M):
    hist.append((float(m.group(1)), int(m.group(2))))
q = re.search(r"^\s*queries:\s+(\d+)\s+\(([0-9.]+) per sec", text, re.M)
e = re.search(r"^\s*ignored errors:\s+(\d+)", text, re.M)
ev = re.search(r"total number of events:\s+(\d+)", text)
t = re.search(r"^\s*transactions:\s+\d+\s+\(([0-9.]+) per sec", text, re.M)
p95_line = re.search(r"95th percentile:\s+([0-9.]+)", text)
if not q:
    sys.exit("parse_sysbench: no 'queries:' line in sysbench output")
p95 = float(p95_line.group(1)) if p95_line else float("nan")
total = sum(c for _, c in hist)
if total:
    need, seen = 0.95 * total, 0
    for value, count in hist:
        seen += count
        if seen >= need:
            p95 = value
            break
print(f"{float(q.group(2)):.2f} {p95:.3f} {q.group(1)} {e.group(1) if e else 0} {ev.group(1) if ev else 0} {float(t.group(1)) if t else 0:.2f}")
