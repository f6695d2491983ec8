"""What to run: validated scenario specs, trace loaders, the named-scenario catalogue."""
