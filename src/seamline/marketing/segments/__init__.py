"""Segments: rules over everything Seamline knows about a person, kept up to date incrementally."""
