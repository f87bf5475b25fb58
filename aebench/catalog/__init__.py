"""What a user can name as a model: the built-in registry, plug-ins, and the contract check run before any run."""
