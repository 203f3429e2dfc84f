"""The ground-truth similarity metric: grid spec, per-frame signatures, kernels, signature store, study formats."""
