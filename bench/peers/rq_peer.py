"""RQ (python-rq) through the peer workload.

Configuration: ``Queue.enqueue(noop, body, job_id=id)`` one call per job; the worker is
``rq.SimpleWorker`` (runs jobs in its own process: RQ's default ``Worker`` forks a child per
job, which measures fork() rather than the queue), started with ``work(with_scheduler=False)``
since every drained job is due now, log level WARNING (no line per job, as for every
peer); results kept for RQ's default ``result_ttl`` (500 s), as
users get it. A job counts as finished when it is in the queue's ``FinishedJobRegistry``.
Memory: ``enqueue_in(1 day, ..., job_id=id)`` in pipelines of 100.
"""

from __future__ import annotations

from datetime import timedelta

from rq import Queue, SimpleWorker
from rq.registry import FinishedJobRegistry

from bench.peers.base import Peer, main

QUEUE = "peers"
HANDLER = "bench.peers.rq_peer.noop"  # by name: the driver runs this module as __main__


def noop(body: bytes) -> None:
    """The no-op handler."""


class RQPeer(Peer):
    """RQ over a private redis-server."""

    name = "RQ"
    package = "rq"
    config = "SimpleWorker (no fork per job), scheduler off, log level WARNING, default result_ttl"

    def enqueue(self, target: str, ids: list[str], body: bytes) -> None:
        """One ``enqueue`` per job."""
        queue = Queue(QUEUE, connection=self.redis(target))
        for id in ids:
            queue.enqueue(HANDLER, body, job_id=id)

    def schedule(self, target: str, ids: list[str], body: bytes) -> None:
        """``enqueue_in`` a day ahead, 100 per pipeline."""
        conn = self.redis(target)
        queue = Queue("later", connection=conn)
        for start in range(0, len(ids), 100):
            with conn.pipeline() as pipe:
                for id in ids[start : start + 100]:
                    queue.enqueue_in(timedelta(days=1), HANDLER, body, job_id=id, pipeline=pipe)
                pipe.execute()

    def remaining(self, target: str, total: int) -> int:
        """Jobs not yet in the finished registry."""
        conn = self.redis(target)
        done: int = FinishedJobRegistry(QUEUE, connection=conn).get_job_count(cleanup=False)
        return total - done

    def work(self, target: str) -> None:
        """One ``SimpleWorker`` until SIGTERM."""
        conn = self.redis(target)
        SimpleWorker([Queue(QUEUE, connection=conn)], connection=conn).work(
            with_scheduler=False, logging_level="WARNING"
        )


if __name__ == "__main__":
    main(RQPeer())
