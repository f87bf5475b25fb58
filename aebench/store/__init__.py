"""An experiment folder on disk: its CSV files (written atomically), per-image values and checkpoints, and their readers."""
