"""analyse: pure functions. The policy engine, verdicts and what-if."""
