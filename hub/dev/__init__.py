"""Tools for developing and trying the hub without real providers."""
