"""Session flows written once, as generators of `_effects`, for every I/O flavour."""
