"""Running a grid: options, profiles and study files, one cell's training and evaluation, executors, reuse and rescoring."""
