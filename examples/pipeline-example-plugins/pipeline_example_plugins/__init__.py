"""Example stages for pipeline: an extractor (``products``) and two image ops (``sepia``, ``frame``).

They are found by their entry points (see this package's pyproject.toml), or by
dotted path: ``pipeline_example_plugins.ops.sepia``.
"""
