"""Metric functions: each a plain function of (model, images) or of arrays, tested on known answers."""
