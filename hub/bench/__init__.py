"""Benchmarks behind `hub bench`: they report figures, they never pass or fail."""
