"""edgeml: take a trained model to a fleet of AWS IoT Greengrass v2 core devices and keep it running."""

__version__ = "0.1.0"
