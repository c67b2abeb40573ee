"""The Celery binding: the app, its queues and routing, and thin stage tasks.

Tasks here only translate messages into calls on the worker runtime
(``workers``); all behaviour lives there or in ``pipeline.core``.
"""
