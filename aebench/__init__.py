"""aebench: one training loop and one evaluation protocol for generative autoencoders."""
