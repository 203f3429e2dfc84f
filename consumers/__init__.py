"""Consumers: long-running Kafka consumers (the detector and alert sinks)."""
