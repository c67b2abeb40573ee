"""Task names and queues, importable without building the Celery app.

The producer sends by name, so a client never imports worker code.
"""

FETCH_QUEUE = "pipeline.fetch"
TRANSFORM_QUEUE = "pipeline.transform"
REDUCE_QUEUE = "pipeline.reduce"
QUEUES = (FETCH_QUEUE, TRANSFORM_QUEUE, REDUCE_QUEUE)

CRAWL_PAGES = "pipeline.crawl.pages"
IMAGES_FETCH = "pipeline.images.fetch"
IMAGES_TRANSFORM = "pipeline.images.transform"
JOB_FINALIZE = "pipeline.reduce.finalize"

ROUTES = {
    CRAWL_PAGES: {"queue": FETCH_QUEUE},
    IMAGES_FETCH: {"queue": FETCH_QUEUE},
    IMAGES_TRANSFORM: {"queue": TRANSFORM_QUEUE},
    JOB_FINALIZE: {"queue": REDUCE_QUEUE},
}
