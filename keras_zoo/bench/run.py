"""The driver of `keras-zoo bench`: the tables to run, the cases chosen by label, and
`run_all`, which prints the machine and runs every table asked for in one process."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from keras_zoo.bench.cases import CASES, TRAIN_CASES, Case
from keras_zoo.bench.machine import cpu_description
from keras_zoo.bench.runners import TORCH_REFERENCE, load_torch_reference
from keras_zoo.bench.runtimes import EXPORT_FORMATS, INT8_CASES, RUNTIME_CASES, bench_runtimes
from keras_zoo.bench.tables import (
    bench_build,
    bench_inference,
    bench_port,
    bench_training,
    peak_memory,
)
from keras_zoo.bench.timing import gemm_gflops

TABLES = ("inference", "runtimes", "training", "build", "port", "memory")


def choose_cases(labels: Sequence[str], option: str = "cases") -> list[Case]:
    """The cases labelled in `labels`, in CASES' order; ValueError naming `option` when a label
    is none of theirs."""
    known = [c.label for c in CASES]
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise ValueError(f"{option}: none of {unknown} is one of {known}")
    return [c for c in CASES if c.label in labels]


def choose_runtime_cases(
    cases: Sequence[str] | None, runtimes_cases: Sequence[str] | None
) -> list[Case]:
    """The runtimes table's cases: `runtimes_cases`, else `cases` when given, else
    RUNTIME_CASES; ValueError naming runtimes_cases for a label that is no case's."""
    labels = (
        runtimes_cases
        if runtimes_cases is not None
        else cases
        if cases is not None
        else RUNTIME_CASES
    )
    return choose_cases(labels, "runtimes_cases")


def _int8_labels(int8_cases: Sequence[str] | None, runtime_cases: Sequence[Case]) -> list[str]:
    """The runtimes table's cases that get int8 exports: INT8_CASES among them by default, or
    `int8_cases`, each of which must be one of them."""
    labels = [c.label for c in runtime_cases]
    if int8_cases is None:
        return [label for label in labels if label in INT8_CASES]
    choose_cases(int8_cases, "int8_cases")
    missing = [label for label in int8_cases if label not in labels]
    if missing:
        raise ValueError(f"int8_cases: {missing} not among the runtimes table's cases {labels}")
    return list(int8_cases)


def _runtimes_unavailable() -> str | None:
    """Why the runtimes table cannot run here (a missing package), or None."""
    from keras_zoo.deploy import require

    try:
        for fmt in EXPORT_FORMATS:
            require(fmt)
    except ImportError as err:
        return str(err)
    return None


def run_all(
    *,
    size: int = 224,
    batch_sizes: Sequence[int] = (1, 16),
    rounds: int = 5,
    seconds: float = 2.0,
    train_batch: int = 16,
    cases: Sequence[str] | None = None,
    torch_reference: str | None = TORCH_REFERENCE,
    jit_compile: bool = False,
    memory: bool = True,
    tables: Sequence[str] | None = None,
    runtimes_cases: Sequence[str] | None = None,
    int8_cases: Sequence[str] | None = None,
    out: TextIO = sys.stdout,
) -> dict:
    """Every benchmark of the package (or those named in `tables`, some of TABLES; memory=False
    leaves the memory one out), in one process; returns the rows of every table run.

    The runtimes table covers `runtimes_cases` (default: `cases` when given, else
    RUNTIME_CASES), with int8 exports for `int8_cases` (default: those of INT8_CASES it covers;
    () for none).
    """
    import tensorflow as tf

    chosen = choose_cases(cases if cases is not None else [c.label for c in CASES])
    if not chosen:
        raise ValueError(f"cases: none given; some of {[c.label for c in CASES]}")
    tables = [t for t in (TABLES if tables is None else tables) if memory or t != "memory"]
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValueError(f"tables: none of {unknown} is one of {list(TABLES)}")
    runtime_cases = choose_runtime_cases(cases, runtimes_cases)
    int8_labels = _int8_labels(int8_cases, runtime_cases)
    torch_fn = load_torch_reference(torch_reference)
    import keras

    from keras_zoo.torch_reference import INSTALL

    torch_column = (
        "yes"
        if torch_fn
        else f"no (torch or the reference is not importable; for torch: {INSTALL})"
    )
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"{os.cpu_count()} CPUs, XLA {'on' if jit_compile else 'off'}; torch column: "
        f"{torch_column}",
        file=out,
    )
    print(f"CPU: {cpu_description()}", file=out)
    if torch_fn is not None:
        import torch

        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=out)
    peak = gemm_gflops()
    print(f"float32 GEMM peak (1024x1024 matmul): {peak:.1f} GFLOP/s", file=out)
    results: dict[str, Any] = {"gemm_gflops": peak}
    if "inference" in tables:
        results["inference"] = bench_inference(
            chosen,
            size=size,
            batch_sizes=batch_sizes,
            rounds=rounds,
            seconds=seconds,
            torch_fn=torch_fn,
            jit_compile=jit_compile,
            peak=peak,
            out=out,
        )
    if "runtimes" in tables and runtime_cases:
        why_not = _runtimes_unavailable()
        if why_not:
            print(f"\nruntimes: left out, {why_not}", file=out)
        else:
            results["runtimes"] = bench_runtimes(
                runtime_cases,
                size=size,
                batch_sizes=batch_sizes,
                rounds=rounds,
                seconds=seconds,
                torch_fn=torch_fn,
                int8_cases=int8_labels,
                out=out,
            )
    train_cases = [c for c in chosen if c.label in TRAIN_CASES]
    if "training" in tables and train_cases:
        results["training"] = bench_training(
            train_cases,
            size=size,
            batch=train_batch,
            rounds=rounds,
            seconds=seconds,
            torch_fn=torch_fn,
            out=out,
        )
    if "build" in tables:
        results["build"] = bench_build(chosen, size=size, rounds=rounds, out=out)
    if "port" in tables and torch_fn is not None:  # the checkpoint is made with torch
        results["port"] = bench_port(torch_fn, rounds=rounds, out=out)
    if "memory" in tables:
        results["memory"] = peak_memory(chosen, size=size, batch=max(batch_sizes), out=out)
    return results
