"""What the figures were measured on: the processor, the runtimes' versions, and the cores
every runtime is given."""

from __future__ import annotations

import os
import platform


def every_core(torch_used: bool) -> int:
    """Every core for every runtime: TensorFlow, LiteRT, ONNX Runtime and OpenVINO take them
    by default or from `load_exported`; torch is told."""
    threads = os.cpu_count() or 1
    if torch_used:
        import torch

        torch.set_num_threads(threads)
    return threads


def cpu_description() -> str:
    """The processor's model name and widest vector instructions (from /proc/cpuinfo where
    there is one), and whether TensorFlow differentiates grouped convolutions itself (oneDNN)
    or through XLA: the figures of one machine do not carry over to another."""
    from keras_zoo.layers import grouped_conv_support

    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    isa = [
        label
        for flag, label in (
            ("avx512f", "AVX-512"),
            ("avx512_bf16", "AVX512-BF16"),
            ("amx_tile", "AMX"),
            ("avx2", "AVX2"),
        )
        if flag in flags
    ]
    if "AVX-512" in isa:
        isa.remove("AVX2")
    grouped = {
        "tensorflow": "TensorFlow's kernels (oneDNN)",
        "forward": "TensorFlow's kernels, XLA's gradients",
        None: "Keras' XLA path",
    }[grouped_conv_support("float32")]
    return f"{name}, {', '.join(isa) or 'no AVX'}; grouped convolutions: {grouped}"


def runtime_versions() -> str:
    """The versions of the export runtimes and converters installed here, "PACKAGE VERSION"
    joined by commas (those not installed left out)."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("ai-edge-litert", "onnxruntime", "openvino", "tf2onnx"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)
