"""Next best channel and send time (optichannel): model.py (the choice), service.py (the evidence)."""
