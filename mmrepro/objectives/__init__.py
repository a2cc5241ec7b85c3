"""Training objectives and estimators shared across models."""
