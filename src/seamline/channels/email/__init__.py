"""Email channel: MIME parsing, outbound messages over SMTP and polling a mailbox over IMAP."""
