"""Training and export of the two ONNX models (needs the optional ``train`` extra: PyTorch)."""
