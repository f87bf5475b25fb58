"""The model contract, shared networks, the model registry, and SWAE."""
