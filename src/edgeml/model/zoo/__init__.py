"""Pretrained image models exported to ONNX at build time (weights come from installed packages)."""
