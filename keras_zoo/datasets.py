"""A small real image dataset available offline: scikit-learn's bundled handwritten digits.

1,797 grayscale 8x8 scans of the digits 0-9 (the UCI "Optical Recognition of Handwritten
Digits" test set, 43 writers), shipped inside scikit-learn (`sklearn.datasets.load_digits`).
`write_digits` writes them as a class-per-folder tree of PNG files, the layout of a user's own
data, so that the training workflow runs end to end without a download.
"""

from __future__ import annotations

import os

import numpy as np

from keras_zoo.files import staged_dir


def write_digits(root: str | os.PathLike, *, size: int = 32) -> str:
    """Writes root/0/ .. root/9/ with each digit as a size x size RGB PNG (upsampled
    bilinearly from 8x8) and returns root. A complete tree already there is kept as it is.

    >>> import os, tempfile
    >>> root = write_digits(os.path.join(tempfile.mkdtemp(), "digits"), size=16)
    >>> sorted(os.listdir(root)) == [str(d) for d in range(10)]
    True
    >>> sum(len(os.listdir(os.path.join(root, d))) for d in os.listdir(root))
    1797
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    from keras_zoo.checks import check_positive_int

    root = os.fspath(root)
    check_positive_int(size, "size")
    digits = load_digits()
    names = [f"{i:04d}.png" for i in range(len(digits.target))]
    expected = {os.path.join(str(t), n) for t, n in zip(digits.target, names)}
    if os.path.isdir(root):
        present = {
            os.path.join(d, f)
            for d in os.listdir(root)
            if os.path.isdir(os.path.join(root, d))
            for f in os.listdir(os.path.join(root, d))
        }
        if present == expected:
            return root
        if present:
            raise ValueError(
                f"{root!r} holds other files than the digits dataset; give an empty or new folder"
            )
    with staged_dir(root) as tmp:
        for image, target, name in zip(digits.images, digits.target, names):
            pixels = np.round(image * (255 / 16)).astype(np.uint8)
            picture = Image.fromarray(pixels, "L").resize((size, size), Image.Resampling.BILINEAR)
            os.makedirs(os.path.join(tmp, str(target)), exist_ok=True)
            picture.convert("RGB").save(os.path.join(tmp, str(target), name))
    return root
