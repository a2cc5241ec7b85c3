"""Evaluation protocols: each is a callable (model, datamodule) -> metrics, chosen by the `eval`
config group, and may save artifacts (figure data) in the run directory."""
