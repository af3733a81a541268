"""TFLite export and the on-device (LiteRT) runtime."""
