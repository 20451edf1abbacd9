"""The chat bot: a participant of the inbox that answers typical questions with live data in
every channel and hands over to people (docs/assistant.md). Above inbox, commerce, loyalty,
customers and recommendations; imported by none of them: the composition root registers
`service.respond` as the inbox's responder."""
