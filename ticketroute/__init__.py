"""The operator tools: the `ticketroute` command (`explain`, `deadletter`) and `make run`'s
devstack. They use the services' pure core and runtime; the services never import them."""
