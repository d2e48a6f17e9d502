"""The same workload on redisched and on other job queues (``make bench-peers``)."""
