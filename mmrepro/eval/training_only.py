"""No evaluation protocol: the run records its training only (for models and datasets whose
table protocol is not built yet)."""


class TrainingOnly:
    def check(self, model, modality_names: list[str]) -> None:
        pass

    def __call__(self, model, datamodule, run_dir) -> dict:
        return {"train/final_loss": float(model.last_finite_loss)}
