"""Web push: notifications to customers' browsers (VAPID, aes128gcm; `inbox_webpush_*` settings)."""
