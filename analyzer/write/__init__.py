"""Outputs: every writer is registered by name (write.registry) and reads only the RunResult."""
