"""Relaxed injective flows (Kumar, Poole & Murphy 2020) and the regularized autoencoders of their table 1."""

from layers.priors import GaussianMixturePrior
from zoo.models.injflow import presets
from zoo.models.injflow.models import Autoencoder, ContractiveAutoencoder, InjectiveFlow, VariationalAutoencoder
from zoo.models.injflow.presets import PAPER
from zoo.models.injflow.networks import ARCHITECTURES, PAPER_LATENT_DIMS, build_decoder, build_encoder

__all__ = ["ARCHITECTURES", "Autoencoder", "ContractiveAutoencoder", "GaussianMixturePrior", "InjectiveFlow",
           "PAPER", "PAPER_LATENT_DIMS", "VariationalAutoencoder", "build_decoder", "build_encoder", "presets"]
