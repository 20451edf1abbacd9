"""Marketing messages: templates (RU/EN, sandboxed Jinja2), and each message sent to a person
(with the pressure rules: marketing consent, frequency caps, quiet hours)."""
