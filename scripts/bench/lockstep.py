"""The driver side of the lockstep protocol (`palimpsest bench train --lockstep`), shared by
train_vs_pytorch.py and ab_train.py: an engine process reads `train` or `forward` commands on
stdin and answers each with one JSON line on stdout (after a first line when it is ready, and a
last one when its stdin closes)."""
import json
import statistics
import subprocess
import sys
import time


class Engine:
    """One engine process stepping on command."""

    def __init__(self, name, command, env=None):
        self.name, self.command = name, command
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def reply(self):
        """The next JSON line the engine prints (other lines are skipped)."""
        while True:
            line = self.process.stdout.readline()
            if not line:
                sys.exit(f"{self.name} stopped: {' '.join(self.command)}")
            if line.startswith("{"):
                return json.loads(line)

    def step(self, phase, pause):
        """Rests `pause` seconds (so the other engine's idle threads settle), runs one step, returns its seconds."""
        time.sleep(pause)
        self.process.stdin.write(phase + "\n")
        self.process.stdin.flush()
        return self.reply()["seconds"]

    def close(self):
        """Closes stdin and returns the engine's last reply (its peak RSS)."""
        self.process.stdin.close()
        last = self.reply()
        self.process.wait()
        return last


def run_pairs(engines, phase, steps, pause):
    """A warm-up step of each engine, then `steps` rounds of one step each, the order alternating
    between rounds. Returns {name: [seconds per step]}, round by round."""
    names = list(engines)
    for name in names:
        engines[name].step(phase, pause)
    times = {name: [] for name in names}
    for i in range(steps):
        for name in (names if i % 2 == 0 else names[::-1]):
            times[name].append(engines[name].step(phase, pause))
    return times


def ratio_stats(times, over, under):
    """Per-round ratios times[over][i] / times[under][i]: (the list, median, lower and upper quartile)."""
    ratios = [a / b for a, b in zip(times[over], times[under])]
    q = statistics.quantiles(ratios, n=4)
    return ratios, statistics.median(ratios), q[0], q[2]
