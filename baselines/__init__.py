"""Baselines for SWAE, each one file built on models/: VAE, beta-VAE, WAE, VampPrior."""
