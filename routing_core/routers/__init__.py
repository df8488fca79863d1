"""One module per router; each registers itself by name in `routing_core.registry`."""
