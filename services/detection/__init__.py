"""Detection: rolling windows, the per-frame detector, alerts and their store, the index journal, metrics."""
