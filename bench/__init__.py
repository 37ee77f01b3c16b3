"""Throughput benchmark of faustapp against a raw Kafka consumer and Quix Streams.

``python -m bench.run`` (or ``make bench``) starts a local Kafka broker, fills one topic with
seeded sensor readings, runs every consumer on it in alternating rounds, prints a table and
writes the same figures as JSON. ``--quick`` is the small smoke size ``make test`` runs.
"""
