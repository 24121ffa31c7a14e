"""The ticketroute benchmark: `make bench`, or `python -m bench --help`."""
