"""Tests of the telephony channel."""
