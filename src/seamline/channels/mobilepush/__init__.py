"""Mobile push: notifications to customers' app installs through FCM HTTP v1 (`inbox_mobilepush_*` settings)."""
