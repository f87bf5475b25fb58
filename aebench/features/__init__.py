"""The feature networks the metrics read images through: the trained classifier backbone and Inception."""
