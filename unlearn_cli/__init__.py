"""unlearn: make a trained image generator forget part of its training data."""

__version__ = "0.1.0"
