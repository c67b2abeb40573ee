"""How much of Redis fetched bytes may take (``pipeline.ledger.memory``), and how `workers`/`top` say it."""

from __future__ import annotations

from pipeline.ledger.memory import (
    UNLIMITED_BLOB_BUDGET,
    RedisMemory,
    blob_budget,
    cache_cap,
    memory_line,
    memory_report,
)

MIB = 2**20


def test_the_default_budget_is_half_of_maxmemory() -> None:
    assert blob_budget(RedisMemory(used=1, limit=64 * MIB), None) == 32 * MIB


def test_without_maxmemory_the_budget_is_the_setting_or_a_fixed_default() -> None:
    assert blob_budget(RedisMemory(used=1, limit=0), None) == UNLIMITED_BLOB_BUDGET
    assert blob_budget(RedisMemory(used=1, limit=0), 5 * MIB) == 5 * MIB


def test_a_setting_over_half_of_maxmemory_is_lowered_to_it() -> None:
    assert blob_budget(RedisMemory(used=1, limit=64 * MIB), 10 * MIB) == 10 * MIB
    assert blob_budget(RedisMemory(used=1, limit=64 * MIB), 100 * MIB) == 32 * MIB


def test_the_result_cache_keeps_within_a_quarter_of_maxmemory_whatever_its_setting() -> None:
    assert cache_cap(RedisMemory(used=1, limit=64 * MIB), 256 * MIB) == 16 * MIB
    assert cache_cap(RedisMemory(used=1, limit=64 * MIB), 0) == 16 * MIB  # "no cap" still fits Redis
    assert cache_cap(RedisMemory(used=1, limit=64 * MIB), 4 * MIB) == 4 * MIB
    assert cache_cap(RedisMemory(used=1, limit=0), 256 * MIB) == 256 * MIB


def test_info_memory_fields_are_read_and_nearly_full_is_from_ninety_percent() -> None:
    memory = RedisMemory.of({"used_memory": 58 * MIB, "maxmemory": 64 * MIB, "maxmemory_policy": "noeviction"})
    assert memory.near_full and memory.describe() == "used 58.0 MiB of 64.0 MiB (91%)"
    assert not RedisMemory(50 * MIB, 64 * MIB).near_full
    assert not RedisMemory(50 * MIB, 0).near_full and "no maxmemory" in RedisMemory(50 * MIB, 0).describe()


def test_the_memory_line_names_the_limit_the_budget_and_what_to_do_when_nearly_full() -> None:
    calm = memory_line(memory_report(RedisMemory(12 * MIB, 64 * MIB), 3 * MIB, None))
    assert calm == "Redis memory: used 12.0 MiB of 64.0 MiB (19%) · fetched bytes 3.0 MiB of 32.0 MiB budget"
    full = memory_line(memory_report(RedisMemory(63 * MIB, 64 * MIB), 30 * MIB, None))
    assert "NEARLY FULL (noeviction)" in full and "maxmemory" in full
