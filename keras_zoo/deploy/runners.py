"""Each format's file opened in its runtime: a runner takes (path, threads, precision) and
returns the function that runs a float32 batch and returns the outputs as numpy.

Each runtime is imported when its runner is called, so that keras_zoo imports without them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Run = Callable[[np.ndarray], np.ndarray]


def open_litert(path: str, threads: int, precision: str) -> Run:
    """A .tflite file in LiteRT's interpreter (XNNPACK), resized to each new batch shape."""
    from ai_edge_litert.interpreter import Interpreter

    from keras_zoo.console import native_stderr_filtered

    interpreter = Interpreter(model_path=path, num_threads=threads)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]["index"]
    state = {"shape": None}

    def run(x):
        if state["shape"] != x.shape:
            interpreter.resize_tensor_input(inp["index"], x.shape)
            with native_stderr_filtered():  # LiteRT's "Created ... XNNPACK delegate" notice
                interpreter.allocate_tensors()
            state["shape"] = x.shape
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(out).copy()

    return run


def open_onnx(path: str, threads: int, precision: str) -> Run:
    """An .onnx file in ONNX Runtime on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def open_openvino(path: str, threads: int, precision: str) -> Run:
    """An OpenVINO IR (.xml) compiled for the CPU at `precision` ("bf16"; f32 otherwise),
    tuned for latency."""
    import openvino as ov

    hint = {"f32": "f32", "bf16": "bf16"}.get(precision, "f32")
    compiled = ov.Core().compile_model(
        path,
        "CPU",
        {
            "INFERENCE_PRECISION_HINT": hint,
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
        },
    )
    request = compiled.create_infer_request()

    def run(x):
        request.infer({0: x})
        return request.get_output_tensor(0).data.copy()

    return run


def open_saved_model(path: str, threads: int, precision: str) -> Run:
    """A SavedModel folder loaded by TensorFlow, run through its `serve` endpoint."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    return lambda x: loaded.serve(x).numpy()
