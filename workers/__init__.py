"""The execution runtime inside one worker process (no Celery in here).

``Runtime`` owns an asyncio event-loop thread with one aiohttp session, a
bounded thread pool for blocking I/O, and a process pool for CPU work. The
Celery binding (``tasks``) starts one per worker process and stops it on exit.
"""
