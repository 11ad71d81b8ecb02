"""p99 request time in ms from an h2load --log-file (start_us, status, duration_us per line); fails when any
request did not get a 2xx."""
import sys

durations, bad = [], 0
with open(sys.argv[1]) as f:
    for line in f:
        parts = line.split()
        if len(parts) < 3:
            continue
        if not parts[1].startswith("2"):
            bad += 1
        durations.append(int(parts[2]))
if not durations or bad:
    sys.exit(f"{len(durations)} requests, {bad} not 2xx")
durations.sort()
print(f"{durations[int(len(durations) * 0.99) - 1] / 1000:.3f}")
