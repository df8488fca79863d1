"""LlamaIndex integration: RoutedLLM routes every call to a strong or a weak LLM."""
