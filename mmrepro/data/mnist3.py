"""Three-modality MNIST of CMMD Table 4: an MNIST digit, a rotated MNIST digit and an SVHN digit,
all of the same class (CMMD code load_mnist_3m: "label-matched").

Triples come from match_by_class over (MNIST, MNIST, SVHN) as the MNIST-SVHN pairs do; the rotated
view is the second MNIST list rotated by an angle drawn uniformly in [-max_angle, max_angle]
(the 2-view construction), one seeded angle per MNIST image. The second MNIST list is an
independent permutation of the class, so it is usually, not always, a different digit (the CMMD
code does not say). CMMD subsamples 30,000 training and 7,000 test triples (`max_pairs`).
SVHN's likelihood (`svhn_likelihood`): bernoulli by default, the journal's Appendix C ("the decoder
loss is the sum of two cross entropy terms, one for each missing modality"; the pixels are / 255 in
[0, 1], as the code's load_mnist_3m); gaussian as in MNIST-SVHN.
"""

from __future__ import annotations

import math

import numpy as np

from mmrepro.data.mnist_2view import rotate
from mmrepro.data.mnist_svhn import MNISTSVHN
from mmrepro.data.modalities import Modality
from mmrepro.errors import check_choice, check_range


class MNIST3(MNISTSVHN):
    name = "mnist3"
    lookups = {"mnist": ("mnist", "mnist_index"), "rotated": ("rotated", "rotated_index"), "svhn": ("svhn", "svhn_index")}
    sources = ("mnist", "mnist", "svhn")

    def __init__(self, max_angle: float = math.pi / 4, svhn_likelihood: str = "bernoulli", **kwargs):
        super().__init__(**kwargs)
        self.max_angle = check_range("max_angle", max_angle, 0, math.pi)
        self.svhn_likelihood = check_choice("svhn_likelihood", svhn_likelihood, ("bernoulli", "gaussian"))

    @property
    def modalities(self) -> list[Modality]:
        return [Modality("mnist", (28, 28), "bernoulli"), Modality("rotated", (28, 28), "bernoulli"),
                Modality("svhn", (3, 32, 32), self.svhn_likelihood)]

    def params(self) -> dict:
        return {**super().params(), "max_angle": self.max_angle, "svhn_likelihood": self.svhn_likelihood}

    def extend_bases(self) -> None:
        rng = np.random.default_rng(self.seed + 1000)
        angles = rng.uniform(-self.max_angle, self.max_angle, size=len(self.base["mnist"]))
        self.base["rotated"] = rotate(self.base["mnist"], angles).astype(np.float32)
