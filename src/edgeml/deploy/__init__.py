"""Staged fleet rollouts gated on model health, with fleet rollback (`edgeml deploy ...`)."""
