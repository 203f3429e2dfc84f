"""Producers: turn a frame source into Kafka messages on the frames topic."""
