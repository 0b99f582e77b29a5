#!/usr/bin/env python3
"""Collapses `perf script` output (stdin) into folded stacks (`a;b;c count`), the input
format of flamegraph tools (inferno-flamegraph, flamegraph.pl)."""
import re
import sys
from collections import Counter

stacks = Counter()
frames = []
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip():
        if frames:
            stacks[";".join(reversed(frames))] += 1
            frames = []
        continue
    if line.startswith((" ", "\t")):
        m = re.match(r"\s+[0-9a-f]+\s+(.+?)(?:\s+\(.*\))?$", line)
        if m:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            sym = re.sub(r"::h[0-9a-f]{16}$", "", sym)
            frames.append(sym)
if frames:
    stacks[";".join(reversed(frames))] += 1
for stack, n in stacks.most_common():
    print(f"{stack} {n}")
