"""PFLD-pytorch's modules as the parity reference of keras_zoo's PFLD.

PFLD-pytorch (polarisZhao/PFLD-pytorch) is not a package and has no installable source, so its
`PFLDInference` and `AuxiliaryNet` are written out in the package (keras_zoo/torch_reference.py,
which the benchmark's torch column also takes them from), following its models/pfld.py at the
commit of its published checkpoint (b00750c37deaf5d133933d080d4b7a6421826812), whose
state_dict keys they reproduce: the same module names, the same forward pass. What that
forward pass does and the paper does not: conv2 is a full 3x3 convolution; each inverted
residual's shortcut is a flag of its own; bn8 is built (and saved) but never applied, conv8
(biased) going straight to ReLU; the auxiliary net's 7x7 conv4 pads by 1.

Here: the two modules as train.py trains and saves them together (`PFLDTraining`).
"""

from __future__ import annotations

from torch import nn

from keras_zoo.torch_reference import AuxiliaryNet, PFLDInference

__all__ = ["AuxiliaryNet", "PFLDInference", "PFLDTraining"]


class PFLDTraining(nn.Module):
    """The two modules train.py trains together, as one module for `randomize`: forward returns
    (landmarks, angles); `checkpoint(epoch)` is what train.py saves."""

    def __init__(self):
        super().__init__()
        self.pfld_backbone = PFLDInference()
        self.auxiliarynet = AuxiliaryNet()

    def forward(self, x):
        features, landmarks = self.pfld_backbone(x)
        return landmarks, self.auxiliarynet(features)

    def checkpoint(self, epoch: int = 1) -> dict:
        return {
            "epoch": epoch,
            "pfld_backbone": self.pfld_backbone.state_dict(),
            "auxiliarynet": self.auxiliarynet.state_dict(),
        }
