"""The email channel: digests and notices out through SMTP, replies in through IMAP.

Email is one more door into `consultation/`: a reply is read into small commands, and each
command calls the same core function the Telegram bot calls. Nothing here decides a rule of the
process; it only carries words in and out.
"""
