"""mtls-readiness: find what blocks Istio STRICT mTLS, workload by workload."""

__version__ = "0.1.0"
