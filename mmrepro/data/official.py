"""Is a run's data the paper's? Each source file is checked against the checksum torchvision itself
uses to verify its download (MNIST.resources, SVHN.split_list, CelebA.file_list: MD5s of the files
the papers' datasets are distributed as). MNIST's files are checked through the `.gz` that
torchvision's download leaves beside each unpacked file; without it the file cannot be verified.
XRMB and MIR-Flickr publish no checksums: their verdict compares the shapes the papers give.

The verdict goes to the run record (`data.paper_files`) and into the table's data line, so a table
built from other files (a subset, a re-encoding, another dataset in MNIST's layout) says so even
when the run has no `dataset.note`."""

from __future__ import annotations

from pathlib import Path

from mmrepro.data.tensor_datamodule import file_digest

# The shapes the papers state, for the datasets without published checksums.
PAPER_SHAPES = {
    "xrmb": "acoustic 273-d (7 frames), articulatory 112-d, 40 phones (CMMD Sec. 4.2; Wang et al.)",
    "mir_flickr": "3,857-d image and 2,000-d text features, 38 classes, 25,000 labelled images in 5 splits of "
                  "10,000 / 5,000 / 10,000 (Srivastava & Salakhutdinov; CMMD Sec. 4.3.3)",
}


def torchvision_checksums() -> dict[str, str]:
    """{file name: MD5} from torchvision's own resource lists."""
    from torchvision import datasets

    sums = dict(datasets.MNIST.resources)
    sums.update({name: md5 for _, name, md5 in datasets.SVHN.split_list.values()})
    sums.update({name: md5 for _, md5, name in datasets.CelebA.file_list})
    return sums


def verify(dataset: str, files: list[Path]) -> dict:
    """{"verdict": official | not official | unverified | shapes only | no paper data, "detail": ...}."""
    if dataset.startswith("digits"):
        return {"verdict": "no paper data", "detail": "scikit-learn's bundled 8x8 digits; no paper uses them"}
    if dataset in PAPER_SHAPES:
        return {"verdict": "shapes only", "detail": f"no published checksum; the loader checked the paper's shapes: "
                f"{PAPER_SHAPES[dataset]}"}
    sums = torchvision_checksums()
    checked, unverified = [], []
    for path in map(Path, files):
        name, target = (path.name + ".gz", path.with_name(path.name + ".gz")) if path.name + ".gz" in sums \
            else (path.name, path)
        if name not in sums:
            unverified.append(f"{path.name} (no torchvision checksum)")
        elif not target.is_file():
            unverified.append(f"{path.name} (its {target.name} is absent)")
        elif (found := file_digest(target, "md5")) != sums[name]:
            return {"verdict": "not official", "detail": f"{target.name} has MD5 {found}, torchvision's is {sums[name]}"}
        else:
            checked.append(name)
    if unverified:
        return {"verdict": "unverified", "detail": "cannot be checked against torchvision's MD5s: " + ", ".join(unverified)}
    return {"verdict": "official", "detail": "every file matches torchvision's MD5: " + ", ".join(checked)}
