"""SMS: one HTTP gateway adapter with presets for SMS.ru, SMSC.ru, Twilio and a generic JSON gateway (`inbox_sms_*` settings)."""
