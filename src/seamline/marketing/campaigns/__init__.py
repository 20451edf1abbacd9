"""Campaigns: one-off or scheduled sends to a segment, throttled, with A/B variants and a holdout."""
