"""Journeys: triggered scenarios a person goes through step by step (waits, branches, messages)."""
