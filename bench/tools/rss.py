#!/usr/bin/env python3
"""Prints the resident memory (VmRSS, bytes) of a process and all its descendants, read from /proc (Linux)."""
import sys


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


todo, total = [int(sys.argv[1])], 0
while todo:
    p = todo.pop()
    total += rss(p)
    todo.extend(children(p))
print(total)
