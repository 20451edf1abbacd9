"""Console pages, one router per area: thin handlers that call domain services and render."""
