"""PyTorch weights into keras_zoo models: layout transforms and the name-based mapping."""

from keras_zoo.port.layout import keras_weights_from_torch
from keras_zoo.port.mapping import load_state_dict

__all__ = ["keras_weights_from_torch", "load_state_dict"]
