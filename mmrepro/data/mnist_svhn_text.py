"""MNIST-SVHN-Text (Sutter et al. 2021, MoPoE; CMMD journal Tables 5, 6, H2): MNIST-SVHN pairs plus
the English word of the digit ("zero" ... "nine") written into `len_sequence` = 8 characters at a
random start position, the other characters spaces, each character one-hot over a 71-symbol
alphabet (text modality: 8 x 71, categorical).

Start position: uniform over 0 .. len_sequence - 1 - len(word) (MoPoE: the last slot is always a
space). `text: fixed` draws it once per pair from `seed` (stored as text_start); `text: fresh`
draws it anew every time a batch is read, as MoPoE does per item. Alphabet: `alphabet_file` (a
JSON string, e.g. MoPoE's alphabet.json) or, when null, the 69 symbols of the char-CNN alphabet
(26 letters, 10 digits, 33 punctuation with '-' twice) followed by space and newline (the order of
those two in MoPoE's file is not confirmed here: UNCERTAIN). Characters map to their first
occurrence; characters not in the alphabet give all-zero rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mmrepro.data.mnist_svhn import MNISTSVHN
from mmrepro.data.modalities import Modality
from mmrepro.errors import DataError, check_choice, check_range

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DEFAULT_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+-=<>()[]{}" + " \n"


def read_alphabet(path: str | None) -> str:
    if path is None:
        return DEFAULT_ALPHABET
    try:
        alphabet = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"alphabet file {path} cannot be read as JSON ({type(e).__name__}: {e}); "
                        f"it is MoPoE's alphabet.json (dataset.alphabet_file, null for the built-in one)") from None
    if not isinstance(alphabet, str) or " " not in alphabet:
        raise DataError(f"alphabet file {path} must hold one JSON string that contains a space")
    return alphabet


class MNISTSVHNText(MNISTSVHN):
    name = "mnist_svhn_text"

    def __init__(self, len_sequence: int = 8, text: str = "fixed", alphabet_file: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.len_sequence = check_range("len_sequence", len_sequence, max(map(len, WORDS)) + 1, integer=True)
        self.text_mode = check_choice("text", text, ("fixed", "fresh"))
        self.alphabet = read_alphabet(alphabet_file)
        index = {c: self.alphabet.index(c) for c in set("".join(WORDS) + " ") if c in self.alphabet}
        self.space = index[" "]
        words = np.full((10, self.len_sequence), -1, dtype=np.int64)  # -1: not in the alphabet
        for d, w in enumerate(WORDS):
            words[d, :len(w)] = [index.get(c, -1) for c in w]
        self.word_chars = torch.as_tensor(words)
        self.word_lengths = torch.as_tensor([len(w) for w in WORDS])

    @property
    def modalities(self) -> list[Modality]:
        return super().modalities + [Modality("text", (self.len_sequence, len(self.alphabet)), "categorical")]

    def params(self) -> dict:
        return {**super().params(), "len_sequence": self.len_sequence, "text": self.text_mode}

    def pair_split(self, split: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = super().pair_split(split, rng)
        max_start = self.len_sequence - 1 - np.array([len(w) for w in WORDS])[out["label"]]
        out["text_start"] = np.floor(rng.random(len(out["label"])) * (max_start + 1)).astype(np.int64)
        return out

    def resolve(self, rows: dict[str, Tensor]) -> dict[str, Tensor]:
        out = super().resolve(rows)
        label = rows["label"]
        lengths = self.word_lengths.to(label.device)[label]
        if self.text_mode == "fixed":
            start = rows["text_start"]
        else:
            start = (torch.rand(len(label), device=label.device) * (self.len_sequence - lengths)).long()
        out["text"] = self.encode(label, start)
        return out

    def encode(self, label: Tensor, start: Tensor) -> Tensor:
        """One-hot (B, len_sequence, |alphabet|) of each label's word placed at `start`."""
        pos = torch.arange(self.len_sequence, device=label.device)[None] - start[:, None]
        inside = (pos >= 0) & (pos < self.word_lengths.to(label.device)[label][:, None])
        chars = self.word_chars.to(label.device)[label[:, None], pos.clamp(0, self.len_sequence - 1)]
        chars = torch.where(inside, chars, torch.full_like(chars, self.space))
        onehot = F.one_hot(chars.clamp(min=0), len(self.alphabet)).float()
        return onehot * (chars >= 0)[..., None]

    def decode(self, text: Tensor) -> list[str]:
        """The strings a one-hot text batch spells (all-zero rows read as '?')."""
        idx = text.argmax(-1).cpu().numpy()
        empty = (text.sum(-1) == 0).cpu().numpy()
        return ["".join("?" if e else self.alphabet[i] for i, e in zip(r, z)) for r, z in zip(idx, empty)]
