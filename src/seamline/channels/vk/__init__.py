"""VK: a community's Callback API in, `messages.send` out (`inbox_vk_*` settings)."""
