"""Queue names and the reduce task's name, importable without building the Celery app.

Stage task names are declared by the job kinds (``pipeline.kinds``), each with a
queue role; ``ROLES`` maps a role to its queue. The producer sends by name, so a
client never imports worker code.
"""

FETCH_QUEUE = "pipeline.fetch"
TRANSFORM_QUEUE = "pipeline.transform"
REDUCE_QUEUE = "pipeline.reduce"
QUEUES = (FETCH_QUEUE, TRANSFORM_QUEUE, REDUCE_QUEUE)
ROLES = {"fetch": FETCH_QUEUE, "transform": TRANSFORM_QUEUE, "reduce": REDUCE_QUEUE}

JOB_FINALIZE = "pipeline.reduce.finalize"
