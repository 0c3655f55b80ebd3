"""weights="imagenet": download the published PyTorch checkpoint once, port it once, cache both.

The download goes through keras.utils.get_file into Keras's cache folder ($KERAS_HOME, default
~/.keras) under keras_zoo/; the file name's hash prefix (resnet18-f37072fd.pth) is checked
against the file's sha256 before anything is ported. KERAS_ZOO_WEIGHTS_URL, when set, replaces
the folder part of every download address (a mirror, or a file:// folder).
"""

from __future__ import annotations

import os
import re

import keras

from keras_zoo.port.convert import port, sha256_of

URL_ENV = "KERAS_ZOO_WEIGHTS_URL"


def keras_home() -> str:
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def pretrained_weights(name: str) -> str:
    """The path of the cached Keras weights of `name`'s published weights, made on first use."""
    from keras_zoo.registry import list_models, model_info

    info = model_info(name)
    if not info.weights_url:
        with_weights = [n for n in list_models() if model_info(n).weights_url]
        raise ValueError(
            f"weights='imagenet': {name} has no published weights; ids that have: "
            f"{', '.join(with_weights)}"
        )
    filename = info.weights_url.rsplit("/", 1)[1]
    match = re.search(r"-([0-9a-f]{8,})\.[a-z]+$", filename)
    stem = filename.rsplit(".", 1)[0]
    cache = os.path.join(keras_home(), "keras_zoo")
    ported = os.path.join(cache, f"{stem}.weights.h5")
    if os.path.isfile(ported):
        return ported
    base = os.environ.get(URL_ENV)
    url = base.rstrip("/") + "/" + filename if base else info.weights_url
    os.makedirs(cache, exist_ok=True)
    src = keras.utils.get_file(filename, origin=url, cache_dir=keras_home(),
                               cache_subdir=os.path.join("keras_zoo", "torch"))
    if match and not sha256_of(src).startswith(match.group(1)):
        os.unlink(src)
        raise ValueError(
            f"{filename} downloaded from {url} does not match the sha256 prefix {match.group(1)} "
            "in its name; the file was deleted"
        )
    port(name, src, ported)
    return ported
