"""End-to-end analytics (issue 21): metrics over every channel's data through the identity
graph. Above every operational module: nothing below imports it."""
