"""Domain services: frames, metric, models, index, alerts, metrics. Knows nothing about Kafka."""
