"""The web layer for people: the staff console and the demo storefront. It sits on top of every
domain and calls their services (the console) or the public HTTP API (the storefront)."""
