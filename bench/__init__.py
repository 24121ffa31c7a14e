"""The ticketroute benchmark (issue 3): `make bench`, or `python -m bench --help`."""
