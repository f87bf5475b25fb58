"""`aebench tune`: search spaces and the trial scheduler."""
