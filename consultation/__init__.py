"""The rules of a shared diagnosis, with no transport.

Phases, observations, findings and stances, actions and ballots, rankings, questionnaires,
traceability, the follow-up of the plan after the vote, participation metrics and the outbox,
on one shared base (`common`: looking up a consultation and its rules, coordinator checks, text
cleaning, codes) and one record of what arrived (`inbound`). The Telegram bot, the email
channel, the scheduler and the command line all call these functions; this package imports
none of them.
"""
