"""Looking inside a Keras network: feature maps, kernel statistics, Grad-CAM, confusion
matrices, and a transformer's attention maps (`keras_zoo.viz.attention`).

Works with keras_zoo models and any Functional or Sequential Keras model, nested models
included. Layers are named as `walk_layers` names them: a layer's own name when it is unique,
else its path through the nested models ("backbone/conv1"). Plots are matplotlib Figures
(no pyplot state); `figure_to_array` renders one.

>>> import numpy as np, keras_zoo
>>> from keras_zoo import viz
>>> model = keras_zoo.build("mobilenet_v2", alpha=0.5, input_shape=(96, 96, 3))
>>> [ref.name for ref in viz.default_feature_layers(model)]
['stage1', 'stage2', 'stage3', 'stage4']
>>> viz.kernel_stats(model)[0].name
'features.0.0/kernel'
"""

from keras_zoo.viz.attention import (
    AttentionMaps,
    attention_layers,
    attention_maps,
    attention_rollout,
    attention_weights,
)
from keras_zoo.viz.confusion import confusion_matrix, plot_confusion_matrix, precision_recall
from keras_zoo.viz.features import activation_stats, feature_maps, plot_feature_maps
from keras_zoo.viz.gradcam import grad_cam
from keras_zoo.viz.graph import (
    LayerRef,
    default_cam_layer,
    default_feature_layers,
    find_layers,
    make_probe,
    walk_layers,
)
from keras_zoo.viz.images import figure_to_array, filter_tiles, overlay_heatmaps, tile_channels
from keras_zoo.viz.kernels import (
    KernelStat,
    first_conv,
    kernel_stats,
    named_weights,
    plot_kernel_histograms,
)

__all__ = [
    "AttentionMaps",
    "KernelStat",
    "LayerRef",
    "activation_stats",
    "attention_layers",
    "attention_maps",
    "attention_rollout",
    "attention_weights",
    "confusion_matrix",
    "default_cam_layer",
    "default_feature_layers",
    "feature_maps",
    "figure_to_array",
    "filter_tiles",
    "find_layers",
    "first_conv",
    "grad_cam",
    "kernel_stats",
    "make_probe",
    "named_weights",
    "overlay_heatmaps",
    "plot_confusion_matrix",
    "plot_feature_maps",
    "plot_kernel_histograms",
    "precision_recall",
    "tile_channels",
    "walk_layers",
]
