"""Adapters that let other frameworks run on llmfast (optional extras, imported only when used)."""
