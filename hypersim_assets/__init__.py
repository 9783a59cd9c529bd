"""hypersim-assets: the Hypersim dataset as a Dagster asset graph."""

__version__ = "0.1.0"
