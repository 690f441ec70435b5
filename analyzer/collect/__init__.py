"""collect: all I/O. Prometheus, the Kubernetes API, policy files and the built-in sample mesh."""
