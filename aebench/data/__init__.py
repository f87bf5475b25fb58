"""Getting data: the dataset registry and its loaders, the IDX reader, and `aebench fetch`."""
