"""hvp: hierarchical visual planning from pixels."""
__version__ = "0.1.0"
