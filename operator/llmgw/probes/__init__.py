"""Probes of the world outside Kubernetes objects: backends' model lists, Redis."""
