"""Fuzzed input: valid, invalid and hostile objects through the validator, the CLI and the operator."""
