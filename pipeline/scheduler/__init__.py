"""Recurring jobs: schedules in Redis, and the scheduler service that fires each fire time exactly once.

triggers.py     --cron / --every / --tz -> APScheduler 3 triggers; fire times as epoch ms
definition.py   a schedule: name, trigger, job spec (the words of `pipeline submit`), policies
jobspec.py      job specs: absolute paths, terminal-only flags refused, parsed by `submit`'s parser
keys.py         the Redis key layout, and the Lua scripts next to it
store.py        definitions and state (what the CLI writes and reads)
claims.py       claim / adopt / commit a fire time, heartbeats (exactly once across replicas)
firing.py       a claimed fire -> overlap and grace policies -> Producer.submit -> outcome
executor.py     an APScheduler executor that hands over the fire times themselves
service.py      one replica: timers from APScheduler, a sync + sweep loop, clean shutdown
process.py      starting `pipeline scheduler` as a child (for `pipeline up --scheduler`)
"""
