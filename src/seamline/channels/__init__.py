"""Channel adapters: one folder per provider behind the inbox's adapter interface
(`seamline.inbox.adapters`). Importing a channel registers its adapter."""
