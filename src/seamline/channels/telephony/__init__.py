"""Telephony (CTI): calls from the PBX on the timeline, screen pops, callback tasks."""
