"""Preloaded by the forkserver only: it dies with the worker that started it."""

from workers.orphans import die_with_parent

die_with_parent()
