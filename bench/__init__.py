"""Throughput benchmark of faustapp against a raw Kafka consumer and Quix Streams.

``python -m bench.run`` (or ``make bench``) starts a local Kafka broker, fills a topic with
seeded sensor readings (and a trades and an app-logs topic of the same size), runs every consumer
on its topic in alternating rounds, prints a table and writes the same figures as JSON.
``--quick`` is the small smoke size ``make test`` runs.
"""
