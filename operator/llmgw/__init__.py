"""llmgw: a Kubernetes operator for LiteLLM gateways."""

__version__ = "0.1.0"
