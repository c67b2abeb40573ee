"""pipeline: distributed image and crawl jobs on Redis + Celery."""

__version__ = "0.1.0"
