"""auditpack: compliance evidence packs from Kubernetes clusters (package `evidence`)."""

__version__ = "0.1.0"
