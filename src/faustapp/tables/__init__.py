"""Window state: assigners, aggregates and the event-time engine that owns them."""
