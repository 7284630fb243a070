"""Stacks: infrastructure declared in a document, planned against what exists, applied through the services."""
