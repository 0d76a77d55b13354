"""Benchmarks of this kit: throughput against the reference loop, peak
memory, inference latency (importable from a checkout: ``benchmarks.benchmark``,
``benchmarks.measurements``; not part of the installed package)."""
