"""API keys and their scopes: who may call which route of the API, and whose jobs they see."""
