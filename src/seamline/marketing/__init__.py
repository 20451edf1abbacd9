"""Marketing automation: segments, triggered journeys, campaigns, templates (docs/marketing.md).

Above every operational domain: it reads profiles, events, orders, loyalty and the inbox, and
sends through the inbox's outbound send; nothing below imports it. Each sub-domain is a package
of its own with the module shape (models, schemas, service, api, tasks)."""
