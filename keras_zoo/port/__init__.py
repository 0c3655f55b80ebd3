"""PyTorch weights into Keras models named after torch module paths, keras_zoo's or any other.

The package imports nothing from the zoo above it: the registry's answers reach it as
arguments (`keras_zoo.pretrained` passes them).

- `read_checkpoint(path)`: a .pth (zip or legacy) or .safetensors file as numpy arrays, without
  torch and without running any code from the file;
- `load_state_dict(model, state_dict)`: sets a model by name, layouts transformed in one place;
- `port(model, src, dst)`: a checkpoint in, a Keras weights file with provenance out
  (`keras_zoo.pretrained.port` takes keras_zoo's model ids);
- `identify(state_dict, candidates)`: which architecture a checkpoint fits;
- `compare(model, module, images)`: where a port first diverges, layer by layer;
- `detect_layout(keys)`, `convert_state_dict(state_dict, layout)`: other layouts (timm's
  MobileNets, PFLD-pytorch's training checkpoints) renamed into keras_zoo's by the tables in
  `LAYOUTS` (key_maps.py);
- `adapt_input_conv(weight, in_channels)`: an RGB first convolution for other input channels;
- `resample_position_embedding(embedding, grid)`: a ViT position embedding for another grid of
  patches (bicubic, as timm's resample_abs_pos_embed).
"""

from keras_zoo.port.compare import Comparison, LayerDiff, compare
from keras_zoo.port.convert import PortResult, port, provenance
from keras_zoo.port.key_maps import LAYOUTS, convert_state_dict, detect_layout
from keras_zoo.port.loading import identify
from keras_zoo.port.mapping import load_state_dict, plan_state_dict
from keras_zoo.port.reader import read_checkpoint
from keras_zoo.port.tensors import (
    adapt_input_conv,
    keras_weights_from_torch,
    resample_position_embedding,
)

__all__ = [
    "Comparison",
    "LAYOUTS",
    "LayerDiff",
    "PortResult",
    "adapt_input_conv",
    "compare",
    "convert_state_dict",
    "detect_layout",
    "identify",
    "keras_weights_from_torch",
    "load_state_dict",
    "plan_state_dict",
    "port",
    "provenance",
    "read_checkpoint",
    "resample_position_embedding",
]
