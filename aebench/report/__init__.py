"""Reporting an experiment: summary numbers, statistics, tables, figures, claims and regression checks."""
