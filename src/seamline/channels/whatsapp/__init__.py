"""WhatsApp Business Cloud API: the webhook in, the Graph API out (`inbox_whatsapp_*` settings)."""
