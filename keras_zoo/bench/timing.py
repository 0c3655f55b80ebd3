"""Timing: images per second of a runner, contenders alternating round by round, the
machine's matrix-multiply peak, and (min, median, max) summaries as the tables print them.

>>> fmt(summary([3.0, 1.0, 2.0]))
'2.00 (1.00..3.00)'
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np


def images_per_second(run: Callable, x: np.ndarray, seconds: float) -> float:
    """Calls run(x) for about `seconds` (at least twice) and returns images per second."""
    calls, start = 0, time.perf_counter()
    while True:
        run(x)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and calls >= 2:
            return calls * len(x) / elapsed


def alternate(
    runners: dict[str, Callable], x: np.ndarray, rounds: int, seconds: float
) -> dict[str, list[float]]:
    """Images per second of each runner, round by round, the order rotating each round."""
    for run in runners.values():  # warm-up: tracing and first-call allocation
        run(x)
        run(x)
    names = list(runners)
    result: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in order:
            result[n].append(images_per_second(runners[n], x, seconds))
    return result


def gemm_gflops(n: int = 1024, seconds: float = 1.0) -> float:
    """float32 matrix-multiply throughput of this machine, GFLOP/s (2 n^3 per product)."""
    import tensorflow as tf

    a = tf.random.uniform((n, n))
    b = tf.random.uniform((n, n))
    mm = tf.function(lambda: tf.matmul(a, b))
    mm().numpy()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 2:
        mm().numpy()
        calls += 1
    return 2 * n**3 * calls / (time.perf_counter() - start) / 1e9


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """(min, median, max) of `values`."""
    return min(values), statistics.median(values), max(values)


def fmt(triple: Sequence[float], digits: int = 2) -> str:
    """A (min, median, max) triple as "median (min..max)"."""
    lo, mid, hi = triple
    return f"{mid:.{digits}f} ({lo:.{digits}f}..{hi:.{digits}f})"
