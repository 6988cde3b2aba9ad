"""Transflow learning: a trained flow repurposed for new data by Bayesian inference in its
latent space (`Transflow`), on a zoo flow, its ``.keras`` file or its exported SavedModel."""

from zoo.models.transflow.saved_model_flow import SavedModelFlow, load_flow
from zoo.models.transflow.transflow import BASE_VARIANCE, VARIANCES, Transflow

__all__ = ["BASE_VARIANCE", "VARIANCES", "SavedModelFlow", "Transflow", "load_flow"]
