"""The pure centre of llmgw: validation, fallback graph, render, hash.

Nothing here does I/O or imports kopf, kubernetes, httpx or logging: every
function takes values and returns values, so the CLI and the operator run the
exact same pipeline.
"""
