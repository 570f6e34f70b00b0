"""SecretSight: detections for who reads your secrets."""

__version__ = "0.4.0"
