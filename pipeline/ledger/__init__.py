"""Everything pipeline keeps in Redis, and the one boundary where Redis errors become ours.

keys        every key name (``pl:*``)
jobs        ``Ledger``: job records, items, results, aggregates, the frontier
cluster     ``ClusterLedger`` (``Ledger`` inherits it): workers, broker queues, memory, caches
holdings    ``Holdings``: which worker holds which in-flight items (takeover of the dead)
blobs       ``BlobStore``: fetched bytes between stages, under a cluster-wide budget
memory      Redis's memory against its maxmemory, and the budget it leaves for blobs
cache       the result cache's figures, and emptying it
connection  clients, redaction, and ``translated`` (connection errors -> ``BrokerUnavailable``)
scripts     ``lua``: a script of ``lua/`` with the shared functions it calls
lua/        the scripts that make every exact mutation atomic
"""

from pipeline.ledger.jobs import Claimed, DispatchParams, Ledger

__all__ = ["Claimed", "DispatchParams", "Ledger"]
