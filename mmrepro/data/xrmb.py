"""XRMB as distributed with the VCCA/DCCAE code (Wang et al.): acoustic view (273-d, 7 frames of
context) and articulatory view (112-d), 40 phone labels, one speaker id per frame. Used by CMMD
(Mancisidor et al.) Tables 1, 2, 6 and Sec. 4.4, with x_O = acoustic, x_M = articulatory.

Files (under `root`, names are config values; the CMMD code renames them XRMB1.mat / XRMB2.mat):
view1_file: X1, XV1, XTe1 (train / tune / test acoustic frames, float);
view2_file: X2, XV2, XTe2 (articulatory), trainLabel/tuneLabel/testLabel (0..39),
trainID/tuneID/testID (speaker per frame). Read with scipy (v5) or h5py (v7.3). Used as
distributed (already z-scored).

Protocols (`protocol`):
- folds (Table 1): train+test frames pooled; fold k tests on the speaker pair fold_pairs[k] (CMMD
  code). The code validates on the test fold and trains on the six other speakers; here the next
  pair, fold_pairs[(k + 1) % 4], is the validation fold and the remaining four speakers train, so
  omega is chosen neither on test nor on speakers seen in training (random frames of training
  speakers would overlap their neighbours through the 7-frame windows).
- speaker_independent (Tables 2, 6): train = the original training split (35 speakers); test =
  frames of test_speakers from the tune+test pool; validation = the rest of that pool.
- speaker_dependent (Sec. 4.4): one `speaker`'s frames from all splits, stratified 70/30
  train/test by phone (seeded), `val_fraction` of the training part held out for validation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from mmrepro.data.matfile import load_mat
from mmrepro.data.modalities import Modality
from mmrepro.data.tensor_datamodule import SPLITS, TensorDataModule
from mmrepro.errors import ConfigError, DataError, check_choice, check_range

SOURCE = "the XRMB files distributed with the VCCA/DCCAE code of W. Wang (TTIC, XRMB_data/full)"
VIEW1_KEYS = {"train": "X1", "tune": "XV1", "test": "XTe1"}
VIEW2_KEYS = {"train": ("X2", "trainLabel", "trainID"), "tune": ("XV2", "tuneLabel", "tuneID"),
              "test": ("XTe2", "testLabel", "testID")}
WIDTHS = {"acoustic": 273, "articulatory": 112}
N_PHONES = 40


class XRMB(TensorDataModule):
    name = "xrmb"
    modalities = [Modality("acoustic", (273,), "gaussian"), Modality("articulatory", (112,), "gaussian")]
    label = Modality("label", (N_PHONES,), "categorical")  # y: the phone of the frame

    def __init__(self, root: str = "data/xrmb", view1_file: str = "XRMBf2KALDI_window7_single1.mat",
                 view2_file: str = "XRMBf2KALDI_window7_single2.mat", batch_size: int = 100,
                 protocol: str = "speaker_independent", fold: int = 0,
                 fold_pairs=((1, 3), (43, 45), (10, 13), (27, 29)),
                 test_speakers=(7, 16, 20, 21, 23, 28, 31, 35), speaker: int = 7,
                 val_fraction: float = 0.1, split_seed: int = 0):
        super().__init__(batch_size)
        self.root = Path(root)
        self.view1, self.view2 = self.root / view1_file, self.root / view2_file
        self.protocol = check_choice("protocol", protocol, ("folds", "speaker_independent", "speaker_dependent"))
        self.fold_pairs = [tuple(int(s) for s in p) for p in fold_pairs]
        self.fold = check_range("fold", fold, 0, len(self.fold_pairs) - 1, integer=True)
        self.test_speakers = [int(s) for s in test_speakers]
        self.speaker = int(speaker)
        self.val_fraction = check_range("val_fraction", val_fraction, 0, 1, lo_inclusive=False, hi_inclusive=False)
        self.split_seed = split_seed

    def source_files(self) -> list[Path]:
        return [self.view1, self.view2]

    def read(self) -> dict[str, dict[str, np.ndarray]]:
        """The three distributed splits: {train|tune|test: {acoustic, articulatory, label, speaker}}."""
        for path, key in ((self.view1, "view1_file"), (self.view2, "view2_file")):
            if not path.exists():
                raise DataError(f"XRMB file {path} is missing: it comes with {SOURCE}; point dataset.root "
                                f"(and dataset.{key}) at it")
        v1 = load_mat(self.view1, list(VIEW1_KEYS.values()), "XRMB")
        v2 = load_mat(self.view2, [k for keys in VIEW2_KEYS.values() for k in keys], "XRMB")
        out = {}
        for split, k1 in VIEW1_KEYS.items():
            k2, kl, kid = VIEW2_KEYS[split]
            a, b = v1[k1], v2[k2]
            label, speaker = v2[kl].reshape(-1), v2[kid].reshape(-1)
            for path, k, x, width in ((self.view1, k1, a, 273), (self.view2, k2, b, 112)):
                if x.ndim != 2 or x.shape[1] != width or not np.issubdtype(x.dtype, np.floating):
                    raise DataError(f"XRMB file {path}: {k} is {x.dtype} of shape {x.shape}, expected float (N, {width})")
            if not (len(a) == len(b) == len(label) == len(speaker)):
                raise DataError(f"XRMB files disagree on the {split} split: {len(a)} acoustic, {len(b)} articulatory, "
                                f"{len(label)} label and {len(speaker)} speaker rows")
            if label.size and (label.min() < 0 or label.max() >= N_PHONES):
                raise DataError(f"XRMB file {self.view2}: {kl} holds {label.min()}..{label.max()}, expected 0..{N_PHONES - 1}")
            out[split] = {"acoustic": a.astype(np.float32), "articulatory": b.astype(np.float32),
                          "label": label.astype(np.int64), "speaker": speaker.astype(np.int64)}
        return out

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        parts = self.read()
        if self.protocol == "speaker_independent":
            pool = concat([parts["tune"], parts["test"]])
            self.check_speakers("test_speakers", self.test_speakers, pool["speaker"], "tune+test")
            is_test = np.isin(pool["speaker"], self.test_speakers)
            return {"train": parts["train"], "val": take(pool, ~is_test), "test": take(pool, is_test)}
        if self.protocol == "folds":
            pool = concat([parts["train"], parts["test"]])
            speakers = [s for pair in self.fold_pairs for s in pair]
            self.check_speakers("fold_pairs", speakers, pool["speaker"], "train+test")
            test_pair = self.fold_pairs[self.fold]
            val_pair = self.fold_pairs[(self.fold + 1) % len(self.fold_pairs)]
            is_test, is_val = np.isin(pool["speaker"], test_pair), np.isin(pool["speaker"], val_pair)
            is_train = np.isin(pool["speaker"], speakers) & ~is_test & ~is_val
            return {"train": take(pool, is_train), "val": take(pool, is_val), "test": take(pool, is_test)}
        pool = concat([parts["train"], parts["tune"], parts["test"]])
        self.check_speakers("speaker", [self.speaker], pool["speaker"], "all")
        mine = np.flatnonzero(pool["speaker"] == self.speaker)
        labels = pool["label"][mine]
        train, test = train_test_split(mine, test_size=0.3, stratify=stratifiable(labels), random_state=self.split_seed)
        fit, val = train_test_split(train, test_size=self.val_fraction, random_state=self.split_seed)
        return {"train": take(pool, fit), "val": take(pool, val), "test": take(pool, test)}

    def check_speakers(self, key: str, wanted: list[int], present: np.ndarray, where: str) -> None:
        have = sorted(set(np.unique(present).tolist()))
        absent = [s for s in wanted if s not in have]
        if absent:
            raise ConfigError(f"dataset.{key}", f"speaker(s) {absent} do not exist in the {where} frames of "
                              f"{self.view2.name}; speakers there: {have}")

    def summary(self) -> str:
        lines = [super().summary()]
        for s in SPLITS:
            if s in self._splits:
                ids, counts = np.unique(self._splits[s]["speaker"].cpu().numpy(), return_counts=True)
                lines.append(f"  speakers in {s}: " + ", ".join(f"{i} ({c:,})" for i, c in zip(ids, counts)))
        return "\n".join(lines)


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def take(d: dict[str, np.ndarray], index) -> dict[str, np.ndarray]:
    return {k: v[index] for k, v in d.items()}


def stratifiable(labels: np.ndarray):
    """Stratify by phone when every phone present has at least two frames, else not at all."""
    counts = np.bincount(labels)
    return labels if counts[counts > 0].min() >= 2 else None
