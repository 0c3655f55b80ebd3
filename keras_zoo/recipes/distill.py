"""Knowledge distillation (Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural
Network", 2015): a student learns from a teacher's probabilities softened by a temperature T as
well as from the labels.

The loss of a batch is

    (1 - w) * CE(labels, student) + w * T^2 * KL(softmax(teacher / T) || softmax(student / T))

with the cross entropy and the Kullback-Leibler divergence averaged over the batch (torch's
`kl_div(..., reduction="batchmean")`); T^2 keeps the soft term's gradients at the scale of the
hard term's as T changes; w is `distill_weight`. `Distiller` trains a student with it in an
ordinary `fit`: the teacher runs in inference mode on the same batch, its input made from the
student's (the student's normalisation undone, resized to the teacher's size, the teacher's
normalisation applied), so the two may differ in preprocessing and input size.

>>> import numpy as np
>>> labels = np.array([0, 1])
>>> logits = np.array([[2.0, 0.0], [0.0, 2.0]], np.float32)
>>> round(float(distillation_loss(labels, logits, logits, temperature=4.0, distill_weight=1.0)), 6)
0.0
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_zoo import checks


def check_distillation(temperature: Any, distill_weight: Any) -> tuple[float, float]:
    """The temperature (a positive number) and the soft term's weight (in [0, 1]), checked;
    ValueError naming the argument."""
    temperature = checks.check_positive_number(temperature, "temperature", "1 to 10")
    weight = distill_weight
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise ValueError(f"distill_weight must be a number from 0 to 1, got {weight!r}")
    return temperature, float(weight)


def distillation_loss(
    labels: Any,
    student_logits: Any,
    teacher_logits: Any,
    *,
    temperature: float,
    distill_weight: float,
    label_smoothing: float = 0.0,
) -> Any:
    """The batch's distillation loss (the module's formula): `labels` class indices (N,) or
    class probabilities (N, classes) (a mixed batch's), the logits (N, classes);
    `label_smoothing` applies to the hard term."""
    temperature, weight = check_distillation(temperature, distill_weight)
    student_logits = ops.convert_to_tensor(student_logits)
    teacher_logits = ops.cast(ops.convert_to_tensor(teacher_logits), student_logits.dtype)
    classes = ops.shape(student_logits)[-1]
    labels = ops.convert_to_tensor(labels)
    targets = (  # class indices, or class probabilities (mixed batches)
        ops.cast(labels, student_logits.dtype)
        if len(labels.shape) == 2 and labels.shape[-1] != 1
        else ops.one_hot(
            ops.cast(ops.reshape(labels, (-1,)), "int32"), classes, dtype=student_logits.dtype
        )
    )
    hard = keras.losses.categorical_crossentropy(
        targets,
        student_logits,
        from_logits=True,
        label_smoothing=label_smoothing,
    )
    soft_teacher = ops.softmax(teacher_logits / temperature, axis=-1)
    log_student = ops.log_softmax(student_logits / temperature, axis=-1)
    log_teacher = ops.log_softmax(teacher_logits / temperature, axis=-1)
    kl = ops.sum(soft_teacher * (log_teacher - log_student), axis=-1)
    return (1.0 - weight) * ops.mean(hard) + weight * temperature**2 * ops.mean(kl)


class TeacherInput(keras.layers.Layer):
    """The teacher's input from the student's: the student's normalisation undone (its mean
    and std on the 0..255 scale of the pixels, its channels back to RGB where `student_bgr`),
    the image resized to the teacher's size (bilinear), the teacher's normalisation applied
    (its channels to BGR where `teacher_bgr`). `between` makes one from the two models'
    `keras_zoo.Preprocessing`."""

    def __init__(
        self,
        student_mean: Any,
        student_std: Any,
        teacher_mean: Any,
        teacher_std: Any,
        size: tuple[int, int],
        student_bgr: bool = False,
        teacher_bgr: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.student_mean = [float(v) for v in student_mean]
        self.student_std = [float(v) for v in student_std]
        self.teacher_mean = [float(v) for v in teacher_mean]
        self.teacher_std = [float(v) for v in teacher_std]
        self.size = (int(size[0]), int(size[1]))
        self.student_bgr = bool(student_bgr)
        self.teacher_bgr = bool(teacher_bgr)

    @classmethod
    def between(cls, student: Any, teacher: Any, size: tuple[int, int]) -> TeacherInput:
        """The layer from the student's to the teacher's `keras_zoo.Preprocessing` (mean and
        std of values in [0, 1]) at the teacher's input `size`."""
        return cls(
            [255.0 * v for v in student.mean],
            [255.0 * v for v in student.std],
            [255.0 * v for v in teacher.mean],
            [255.0 * v for v in teacher.std],
            size,
            student_bgr=student.channel_order == "BGR",
            teacher_bgr=teacher.channel_order == "BGR",
        )

    def call(self, x: Any) -> Any:
        pixels = x * ops.array(self.student_std, x.dtype) + ops.array(self.student_mean, x.dtype)
        if self.student_bgr != self.teacher_bgr:
            pixels = ops.flip(pixels, axis=-1)
        if tuple(x.shape[1:3]) != self.size:
            pixels = ops.image.resize(pixels, self.size, interpolation="bilinear")
        return (pixels - ops.array(self.teacher_mean, x.dtype)) / ops.array(
            self.teacher_std, x.dtype
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "student_mean": self.student_mean,
            "student_std": self.student_std,
            "teacher_mean": self.teacher_mean,
            "teacher_std": self.teacher_std,
            "size": self.size,
            "student_bgr": self.student_bgr,
            "teacher_bgr": self.teacher_bgr,
        }


class Distiller(keras.Model):
    """A student trained by `fit` on the distillation loss; its predictions are the student's,
    so compiled metrics (accuracy) are the student's. The teacher is frozen and runs in
    inference mode; `teacher_input` (a `TeacherInput`, or None where both share their input)
    makes its input from the student's. Compile it without a loss (`compile(optimizer,
    metrics=...)`): the loss is this class's. The run keeps `student`."""

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model,
        *,
        temperature: float,
        distill_weight: float,
        label_smoothing: float = 0.0,
        teacher_input: keras.layers.Layer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.temperature, self.distill_weight = check_distillation(temperature, distill_weight)
        self.label_smoothing = float(label_smoothing)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.teacher_input = teacher_input
        self.built = True  # of built models: nothing of its own to build
        student_classes = student.output.shape[-1]
        teacher_classes = teacher.output.shape[-1]
        if student_classes != teacher_classes:
            raise ValueError(
                f"teacher: has {teacher_classes} classes where the student has "
                f"{student_classes}; a teacher must be trained on the student's classes"
            )

    def call(self, x: Any, training: bool = False) -> Any:
        return self.student(x, training=training)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        seen = x if self.teacher_input is None else self.teacher_input(x)
        teacher_logits = ops.stop_gradient(self.teacher(seen, training=False))
        loss = distillation_loss(
            y,
            y_pred,
            teacher_logits,
            temperature=self.temperature,
            distill_weight=self.distill_weight,
            label_smoothing=self.label_smoothing,
        )
        if self.losses:  # the student's own regularisation terms
            loss = loss + ops.sum(self.losses)
        return loss
