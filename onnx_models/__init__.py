"""Exported ONNX models and their model cards."""
