"""The event contracts of ticketroute, shared by every service.

Nothing here imports anything of ours; everything else imports from here.
"""
