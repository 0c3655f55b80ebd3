"""What evaluate measures of a landmark model: the NME by the outer eye corners and by the box
diagonal, the failure rate and AUC at 0.1, and the cumulative error distribution."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from keras_zoo.tasks.landmarks.measures import (
    EYE_CORNERS,
    auc,
    ced_figure,
    failure_rate,
    nme,
)

THRESHOLD = 0.1  # the NME above which a face counts as a failure, as WFLW's papers report


@dataclasses.dataclass
class LandmarkEvaluation:
    """Per face the NME by the outer eye corners (`eyes`, None for point counts without
    them) and by the box diagonal (`box`)."""

    eyes: np.ndarray | None
    box: np.ndarray
    images: int

    @classmethod
    def of(cls, predicted: np.ndarray, true: np.ndarray) -> LandmarkEvaluation:
        """The errors of `predicted` against `true` points (N, 2K), in the same pixels."""
        count = np.asarray(true).reshape(len(true), -1).shape[1] // 2
        eyes = nme(predicted, true, normalise="eyes") if count in EYE_CORNERS else None
        return cls(eyes, nme(predicted, true, normalise="box"), len(true))

    @property
    def errors(self) -> np.ndarray:
        """The headline errors: by the eye corners where there are, else by the diagonal."""
        return self.box if self.eyes is None else self.eyes

    @property
    def score(self) -> float:
        """The mean NME."""
        return float(np.mean(self.errors))

    def lines(self) -> list[str]:
        """The NMEs, failure rate and AUC."""
        rows = []
        if self.eyes is not None:
            rows.append(f"  NME (outer eye corners)  {np.mean(self.eyes):.4f}")
        rows += [
            f"  NME (box diagonal)       {np.mean(self.box):.4f}",
            f"  failure rate @{THRESHOLD:g}       {failure_rate(self.errors, THRESHOLD):.4f}",
            f"  AUC @{THRESHOLD:g}                {auc(self.errors, THRESHOLD):.4f}",
        ]
        return rows

    def figures(self, title: str) -> dict[str, Any]:
        """The cumulative error distribution, as "ced"."""
        name = "NME by the box diagonal" if self.eyes is None else "NME by the eye corners"
        return {"ced": ced_figure({name: self.errors}, threshold=THRESHOLD, title=title)}
