"""What the test harnesses share, so each piece exists once.

- `tickets`: ticket events with realistic defaults, the sample catalog, component refs.
- `processes`: both services as real processes on the embedded broker (`System`), with a
  producer and a consumer of every output; used by the integration and fault tests.
- `checks`: what the outputs of a `System` say: nothing lost, nothing decided twice differently.
- `inprocess`: the services' parser, batch pipeline and processors without Kafka, and the
  fake records and producers the unit tests feed them.
- `stack`: both services wired into one FastStream broker (in memory or on the embedded
  broker), for the contract tests.
"""
