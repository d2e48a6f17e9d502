"""The webhook sender: due jobs of topics with a webhook are POSTed to it, signed and retried.

- :mod:`.dispatcher` leases due jobs through the one lease loop (:mod:`redisched.leasing`) and
  turns each delivery's outcome into an ack, a release or a hold;
- :mod:`.delivery` makes one signed POST and classifies its answer;
- :mod:`.signing` signs requests and verifies them on the receiving side;
- :mod:`.targets` refuses webhook URLs that point at private or metadata addresses;
- :mod:`.dispatch_metrics` counts deliveries for ``/metrics`` and the dashboard.

Concurrency and rate limits live in :mod:`redisched.limits`: they hold for every consumer.
"""
