"""Model runtimes: model cards, the ONNX window encoder and the ONNX anomaly autoencoder."""
