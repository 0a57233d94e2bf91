"""End-to-end tests: a real LiteLLM proxy on a config rendered by `llmgw render`, fake model servers."""
