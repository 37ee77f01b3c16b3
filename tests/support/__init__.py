"""Shared test support code (real Kafka broker management and client helpers)."""
