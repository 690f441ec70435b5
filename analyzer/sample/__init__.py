"""Built-in sample meshes: a simulator of Istio workloads, policies and their metrics.

Not part of the pipeline: it stands in for a cluster and a Prometheus (the demo, the tests, the
benchmarks). It may use the policy engine to decide what each simulated flow looks like.
"""
