"""The ingress daemon: the HTTP and WebSocket front door."""
