"""Family modules, each registering its variants when imported. Every module in this package
is imported, in name order, so adding a family is adding its file here. A family module imports
Keras inside the functions that build, so that the registry loads without TensorFlow
(`keras-zoo list` and `info`), and names itself in `TITLE` ("ResNet/ResNeXt/Wide-ResNet"), which
the command line's description lists."""

from __future__ import annotations

import importlib
import pkgutil


def import_families() -> tuple[str, ...]:
    """Imports every module of this package (a family registers its ids on import) and returns
    their names, sorted."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
    return tuple(names)


FAMILIES: tuple[str, ...] = import_families()
# each family's TITLE, by module name
TITLES: dict[str, str] = {
    name: importlib.import_module(f"{__name__}.{name}").TITLE for name in FAMILIES
}
