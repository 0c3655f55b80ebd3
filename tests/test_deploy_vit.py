"""Vision Transformers export to every format, checked in their runtimes.

The model is the ViT family's own assembly (keras_zoo.models.vit.vision_transformer: patch
convolution, class token, position embedding, pre-norm encoder blocks of Keras'
MultiHeadAttention, LayerNormalization and torch's erf GELU, the final LayerNorm and the head)
at a depth and width small enough for a test: the published ids differ from it only in the
counts of their table, and their 88M+ parameters make one tf2onnx conversion take minutes.
Its weights are Keras' random initialisation, seeded, with the class token and position
embedding made random too, so that every part of the graph bears on the outputs.
"""

import warnings
from collections import Counter

import keras
import numpy as np
import onnx
import pytest
from conftest import relative_error

import keras_zoo
from keras_zoo import deploy, onnx_graph
from keras_zoo.models.vit import vision_transformer

SIZE = 64
CONFIG = {"patch_size": 32, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128}
SUFFIX = {"litert": ".tflite", "onnx": ".onnx", "openvino": ".xml", "saved_model": ""}


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = vision_transformer(**CONFIG, input_shape=(SIZE, SIZE, 3), classes=10, name="vit")
    rng = np.random.default_rng(0)
    for name in ("class_token", "encoder.pos_embedding"):
        layer = model.get_layer(name)
        layer.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in layer.weights])
    return model


@pytest.mark.parametrize("fmt", deploy.FORMATS)
def test_a_vision_transformer_exports_to_every_format_within_1e_4(model, fmt, tmp_path):
    path = tmp_path / f"vit{SUFFIX[fmt]}"
    with warnings.catch_warnings():  # export's own check must see outputs that vary
        warnings.filterwarnings("error", message=".*outputs are the same for every")
        result = keras_zoo.export(model, path, fmt, verbose=False)
    assert result.max_error <= deploy.TOLERANCE and result.quantize is None
    # independently of export's own check: the runtime against Keras on new inputs, of a
    # batch size the check did not use
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [rng.normal(0, 1, (3, SIZE, SIZE, 3)), rng.uniform(-1, 1, (2, SIZE, SIZE, 3))]
    ).astype("float32")
    want = model.predict(x, verbose=0)
    assert np.ptp(want, axis=0).max() > 1e-2 * np.abs(want).max()  # outputs depend on the input
    got = keras_zoo.load_exported(path)(x)
    assert got.shape == want.shape == (5, 10)
    assert relative_error(got, want) <= deploy.TOLERANCE
    if fmt == "onnx":  # torch's GELU is erf's; a softmax per attention, and the head's
        ops = Counter(node.op_type for node in onnx.load(path).graph.node)
        assert ops["Erf"] == CONFIG["num_layers"]
        assert ops["Softmax"] == CONFIG["num_layers"] + 1
        assert ops["Conv"] == 1  # the patch embedding


def test_a_wrong_vision_transformer_export_is_refused(model, tmp_path, monkeypatch):
    """The check is not blind to the transformer's parts: an ONNX export whose attention
    softmax runs over the wrong axis fails it, and nothing is written."""
    original = onnx_graph.rewrite

    def wrong_softmax(path):
        counts = original(path)
        graph = onnx.load(path)
        for node in graph.graph.node:
            if node.op_type == "Softmax":
                del node.attribute[:]
                node.attribute.append(onnx.helper.make_attribute("axis", 1))
        onnx.save(graph, path)
        return counts

    monkeypatch.setattr(onnx_graph, "rewrite", wrong_softmax)
    path = tmp_path / "vit.onnx"
    with pytest.raises(deploy.ExportError, match="disagrees with the Keras model"):
        keras_zoo.export(model, path, verbose=False)
    assert not path.exists() and list(tmp_path.iterdir()) == []
