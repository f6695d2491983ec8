"""Real servers that tests start for themselves (on 127.0.0.1, free ports, always stopped)."""
