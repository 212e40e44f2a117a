"""What a node does, independent of how the request arrived (UDP, TCP, HTTP or CLI)."""
