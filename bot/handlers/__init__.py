"""The bot's handlers, one module per feature; `bot.app` registers what each exports."""
