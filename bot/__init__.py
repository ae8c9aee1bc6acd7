"""The Telegram channel: a door into `consultation/` for people who read Palabre on their phone.

`bot.app` builds the python-telegram-bot Application, `bot.handlers` holds one module per
feature, `bot.inbound` records and guards every update before it is handled, and `bot.sender`
drains the telegram channel of the outbox within Telegram's rate limits.
"""
