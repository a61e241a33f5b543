"""The version, in its own module so that any part of the SDK can read it without a circle."""

__version__ = "0.1.0"
