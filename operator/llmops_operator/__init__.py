"""llmops-operator: the ML/LLM lifecycle as Kubernetes objects."""

__version__ = "0.1.0"
