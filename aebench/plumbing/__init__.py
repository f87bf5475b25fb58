"""Plumbing shared by every job: atomic files, the writer lock, TOML reading, provenance, progress lines, training precision."""
