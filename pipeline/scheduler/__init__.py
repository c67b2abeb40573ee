"""Recurring jobs: schedules in Redis, and the scheduler service that fires each fire time exactly once.

triggers.py     --cron / --every / --tz -> APScheduler 3 triggers; fire times as epoch ms
definition.py   a schedule: name, trigger, job spec (the kind's typed spec, stored as JSON), policies
keys.py         the Redis key layout, and the Lua scripts next to it
store.py        definitions and state (what the CLI writes and reads)
claims.py       claim / adopt / commit a fire time, heartbeats (exactly once across replicas)
firing.py       a claimed fire -> overlap and grace policies -> Producer.submit -> outcome
executor.py     an APScheduler executor that hands over the fire times themselves
service.py      one replica: timers from APScheduler, a sync + sweep loop, clean shutdown
process.py      starting `pipeline scheduler` as a child (for `pipeline up --scheduler`)
"""
