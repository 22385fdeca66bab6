"""Passes over the IR: verify (structure), shapes (inference and checks), stats (counts)."""
