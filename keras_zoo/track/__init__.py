"""Tracking of detections across video frames: boxes in, boxes with persistent ids out.

`Sort` is SORT (Bewley et al. 2016), frame for frame what abewley/sort's reference computes
(a constant-velocity Kalman filter per track and IoU association), with ids counted from 1 per
tracker; `Sort(tracker="byte")` swaps in ByteTrack's two-round association (Zhang et al. 2022),
which also uses the low-score detections SORT users usually throw away.

The package needs only NumPy and SciPy: importing it loads neither Keras nor TensorFlow.

>>> import numpy as np
>>> from keras_zoo.track import Sort
>>> tracker = Sort(min_hits=1)
>>> for x in (10.0, 12.0, 14.0):
...     tracks = tracker.update(np.array([[x, 20.0, x + 40.0, 100.0, 0.9]]))
>>> tracks[:, 4]  # one object, one id
array([1.])
"""

from keras_zoo.track.sort import Sort, iou_matrix

__all__ = ["Sort", "iou_matrix"]
