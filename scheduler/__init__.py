"""The scheduler: holds each consultation to its timetable without anyone pressing a button.

`plan` derives what is to happen from the database, `jobs` does it by calling the core,
`leader` makes sure one instance does it, and `service` ties them to APScheduler inside
`palabre serve`.
"""
