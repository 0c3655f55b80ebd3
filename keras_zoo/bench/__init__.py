"""Side-by-side benchmarks: keras_zoo models against keras.applications and PyTorch, and
keras_zoo's exports in their runtimes against torch's own.

Every figure is measured in one process with the contenders alternating round by round (the
order rotating), so that drift of the machine (turbo, other load) hits all of them alike;
ratios are keras_zoo / peer per round, summarised as min, median and max. `keras-zoo bench` and
`python scripts/bench.py` print the tables; docs/BENCHMARKS.md explains them.

- `cases`: the architectures (`Case`, `CASES`), their models (`zoo_model`, `keras_app_model`,
  `torch_module`) and input sizes (`case_size`: PFLD's is fixed at 112);
- `runners`: a Keras model or a torch module as a callable of an NHWC batch, and the torch
  reference (`keras_runner`, `torch_runner`, `torch_trainer`, `nchw`, `load_torch_reference`);
- `timing`: `images_per_second`, `alternate`, `gemm_gflops`, `summary`, `fmt`;
- `tables`: inference, training (against keras.applications and a torch training loop), build,
  port and memory against the peers;
- `calibration`, `runtimes`: the runtimes table, exports against torch's, outputs checked;
- `machine`: the processor and the runtimes' versions;
- `run`: `run_all`, the driver of `keras-zoo bench`, and `TABLES`, `choose_cases`,
  `choose_runtime_cases`.
"""

from keras_zoo.bench.calibration import (
    CALIBRATION_IMAGES,
    STATISTICS_BATCH,
    calibrate_batch_norms,
    calibrate_torch_batch_norms,
    calibration_images,
    fill_zero_parameters,
    runtime_models,
)
from keras_zoo.bench.cases import (
    CASES,
    TRAIN_CASES,
    Case,
    TorchFn,
    case_size,
    keras_app_model,
    size_note,
    torch_module,
    zoo_model,
)
from keras_zoo.bench.machine import cpu_description
from keras_zoo.bench.run import TABLES, choose_cases, choose_runtime_cases, run_all
from keras_zoo.bench.runners import (
    TORCH_REFERENCE,
    keras_runner,
    load_torch_reference,
    nchw,
    torch_runner,
    torch_trainer,
)
from keras_zoo.bench.runtimes import (
    BEST_OF,
    CONTENDER,
    CONTENDERS,
    EXPORT_FORMATS,
    INT8_CASES,
    RUNTIME_CASES,
    RUNTIMES_COLUMNS,
    TORCH_ONNX_OPSET,
    Contender,
    Runtimes,
    bench_runtimes,
    case_runtimes,
    check_outputs,
    measure_runtimes,
    print_runtimes_row,
    runtimes_row,
    torch_runtimes,
    zoo_runtimes,
)
from keras_zoo.bench.tables import (
    VARIANTS,
    bench_build,
    bench_inference,
    bench_port,
    bench_training,
    peak_memory,
    port_seconds,
)
from keras_zoo.bench.timing import alternate, fmt, gemm_gflops, images_per_second, summary

__all__ = [
    "BEST_OF",
    "CALIBRATION_IMAGES",
    "CASES",
    "CONTENDER",
    "CONTENDERS",
    "EXPORT_FORMATS",
    "INT8_CASES",
    "RUNTIMES_COLUMNS",
    "RUNTIME_CASES",
    "STATISTICS_BATCH",
    "TABLES",
    "TORCH_ONNX_OPSET",
    "TORCH_REFERENCE",
    "TRAIN_CASES",
    "VARIANTS",
    "Case",
    "Contender",
    "Runtimes",
    "TorchFn",
    "alternate",
    "bench_build",
    "bench_inference",
    "bench_port",
    "bench_runtimes",
    "bench_training",
    "calibrate_batch_norms",
    "calibrate_torch_batch_norms",
    "calibration_images",
    "case_size",
    "case_runtimes",
    "check_outputs",
    "choose_cases",
    "choose_runtime_cases",
    "cpu_description",
    "fill_zero_parameters",
    "fmt",
    "gemm_gflops",
    "images_per_second",
    "keras_app_model",
    "keras_runner",
    "load_torch_reference",
    "measure_runtimes",
    "nchw",
    "peak_memory",
    "port_seconds",
    "print_runtimes_row",
    "run_all",
    "runtime_models",
    "runtimes_row",
    "size_note",
    "summary",
    "torch_module",
    "torch_runner",
    "torch_trainer",
    "torch_runtimes",
    "zoo_model",
    "zoo_runtimes",
]
