"""mailbot: collects schools' monthly after-school service tables by email."""

__version__ = "0.1.0"
