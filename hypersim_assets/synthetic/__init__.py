"""A synthetic Hypersim mirror (real layout, dtypes, compression) and a Range-capable server for it, used only by the demo, tests and benchmarks."""
