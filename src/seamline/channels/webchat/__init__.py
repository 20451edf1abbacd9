"""The web chat: an embeddable widget (static/widget.js), its session API and WebSocket."""
