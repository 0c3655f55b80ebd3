"""The rows of keras_zoo.deploy.FORMATS agree with what export and format_of do: each row's
path is recognised as its format, and export's argument checks take every quantization and
layout the row lists and refuse the layouts it does not (each format up to its conversion,
which is not run here: tests/test_deploy.py converts and checks every format)."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

import keras_zoo
from keras_zoo.deploy import FORMATS, exporting, format_of
from keras_zoo.deploy.formats import LAYOUT_CHOICES


class Converting(Exception):
    """Raised in place of the conversion: export's checks of its arguments passed."""


def _converting(*args):
    raise Converting


@pytest.fixture(scope="module")
def model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="tiny")


def test_each_rows_path_is_recognised_as_its_format(tmp_path):
    for row in FORMATS.values():
        if row.suffix:
            assert format_of(tmp_path / f"m{row.suffix}") == row.name
            assert format_of(tmp_path / f"M{row.suffix.upper()}") == row.name
        else:  # a folder, told apart by its marker file
            folder = tmp_path / row.name
            folder.mkdir()
            assert format_of(folder) is None
            (folder / row.marker).write_bytes(b"")
            assert format_of(folder) == row.name


def test_export_takes_what_each_row_lists_and_refuses_other_layouts(model, tmp_path, monkeypatch):
    monkeypatch.setattr(exporting, "_convert", _converting)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        pixels = np.random.default_rng(i).integers(0, 256, (20, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i}.png")
    out = tmp_path / "out"
    taken = 0
    for row in FORMATS.values():
        path = out / f"m{row.suffix}"
        assert set(row.layouts) <= set(LAYOUT_CHOICES) and "nhwc" in row.layouts
        # the precisions an ExportedModel reports, besides "f32"
        assert set(row.quantizations) <= {"int8", "float16", "bf16"}
        for quantize in (None, *row.quantizations):
            for layout in row.layouts:
                calibration = images if quantize == "int8" else None
                # the format named, or taken from a file's suffix (a folder is not yet there)
                for fmt in (None, row.name) if row.suffix else (row.name,):
                    with pytest.raises(Converting):
                        keras_zoo.export(
                            model,
                            path,
                            fmt,
                            quantize=quantize,
                            calibration=calibration,
                            layout=layout,
                            verbose=False,
                        )
                    taken += 1
        for layout in sorted(set(LAYOUT_CHOICES) - set(row.layouts)):
            others = [r.name for r in FORMATS.values() if layout in r.layouts]
            with pytest.raises(ValueError, match=f"{layout} input: {', '.join(others)}$"):
                keras_zoo.export(model, path, row.name, layout=layout, verbose=False)
    assert taken == sum(
        (2 if row.suffix else 1) * len(row.layouts) * (1 + len(row.quantizations))
        for row in FORMATS.values()
    )
    assert sorted(os.listdir(tmp_path)) == ["images"]  # nothing written, no folder left
