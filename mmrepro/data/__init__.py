"""Datasets: one module per dataset, each a TensorDataModule that holds its splits as tensors on
the training device and batches by index. A dataset knows nothing of models; it describes its
modalities (name, shape, likelihood) and models size themselves from that."""
