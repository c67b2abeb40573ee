"""End-to-end benchmarks: ``python -m benchmarks [images|batching|all]`` (``make bench``).

Not part of the test suite. Every figure is a ratio to a baseline measured in
the same run (the machine is shared and noisy), and everything is written to
``benchmarks/results/latest.json`` (git-ignored) along with the machine it ran on.
"""
