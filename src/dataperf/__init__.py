"""DataPerf: benchmarks for data. The model is frozen; participants improve the data."""

__version__ = "0.1.0"
