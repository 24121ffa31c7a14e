"""Instructions per ticket of each service's own work, in process (no Kafka), counted by
valgrind's callgrind.

Wall-clock timings on a shared VM drift by a quarter between runs, which hides a change of a
few percent. An instruction count does not drift: the same code on the same tickets gives the
same count whatever else the machine is doing, so it tells whether a change made the services
cheaper, and by how much. It is not a time: cache misses and the broker are not in it.

How: tickets from the same generator as `make bench` go through each service's processor
(parsed, processed and serialised exactly as in the service, log lines written to /dev/null).
`warm` of them first, uncounted, so that the services' caches and memos are in the state a
busy service keeps them in; then counting is switched on (`callgrind_control -i on`) and
`tickets` others (the next ones of the same stream, never seen before) go through fresh
processors `rounds` times. The count of a run with no rounds is subtracted, so start-up and
shutdown cancel out.

    python -m bench.instructions [--tickets 400] [--warm 5000]   (needs valgrind)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

from aiokafka.structs import ConsumerRecord

if TYPE_CHECKING:
    from services.runtime.pipeline import Processor

SERVICES = ("enricher", "router")
_COLLECTED = re.compile(r"Collected : (\d+)")


def _record(topic: str, offset: int, key: bytes, value: bytes) -> ConsumerRecord[bytes, bytes]:
    """The record type the services are handed by the consumer."""
    return ConsumerRecord(topic, 0, offset, 0, 0, key, value, None, len(key), len(value), [])


def _child(service: str, tickets: int, warm: int, rounds: int) -> None:
    """Runs inside valgrind: prepare, warm up, then count `rounds` passes over the tickets."""
    os.environ.setdefault("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")  # never contacted
    from bench.generate import TicketGenerator  # noqa: PLC0415 - after the environment is set
    from services.enricher.app import EnricherProcessor  # noqa: PLC0415
    from services.enricher.catalog import load_catalog  # noqa: PLC0415
    from services.enricher.enrich import CatalogIndex  # noqa: PLC0415
    from services.router.app import RouterProcessor  # noqa: PLC0415
    from services.runtime.logs import configure_logging, held  # noqa: PLC0415
    from services.runtime.settings import (  # noqa: PLC0415
        EnricherSettings,
        RouterSettings,
        load_settings,
    )

    enricher_settings = load_settings(EnricherSettings)
    router_settings = load_settings(RouterSettings)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the services' log lines are rendered and written, to nowhere
    configure_logging(router_settings.log_level, router_settings.log_format)
    index = CatalogIndex.build(load_catalog(enricher_settings.catalog_path))
    incoming = [
        _record("tickets.incoming", i, e.key, e.value)
        for i, e in enumerate(TicketGenerator().events(warm + tickets))
    ]
    # Built before counting starts: the router's memory is 12 MB of arrays zeroed at start.
    processors: list[Processor]
    if service == "enricher":
        records = incoming
        processors = [EnricherProcessor(index, enricher_settings) for _ in range(rounds + 1)]
    else:  # the router's input is the enricher's output (the router has no catalog memo)
        enricher = EnricherProcessor(index, enricher_settings)
        records = [
            _record("tickets.enriched", r.offset, out.key, out.value)
            for r in incoming
            for out in enricher.process(r)
        ]
        processors = [RouterProcessor(router_settings) for _ in range(rounds + 1)]
    warmed = processors.pop()
    with held():
        for record in records[:warm]:
            warmed.process(record)
    records = records[warm:]
    subprocess.run(
        ["callgrind_control", "-i", "on", str(os.getpid())],
        check=True,
        capture_output=True,
    )
    for processor in processors:
        with held():
            for record in records:
                processor.process(record)
        processor.batch_done()


def _count(service: str, tickets: int, warm: int, rounds: int) -> int:
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null"]
    argv += [sys.executable, "-m", "bench.instructions", "--child", service]
    argv += ["--tickets", str(tickets), "--warm", str(warm), "--rounds", str(rounds)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_ticket(service: str, tickets: int, warm: int, rounds: int = 1) -> float:
    """Instructions per ticket of `service`'s processor (see the module docstring)."""
    counted = _count(service, tickets, warm, rounds) - _count(service, tickets, warm, 0)
    return counted / (rounds * tickets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=400)
    parser.add_argument("--warm", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--service", choices=SERVICES, action="append")
    parser.add_argument("--child", choices=SERVICES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.tickets, args.warm, args.rounds)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    for service in args.service or SERVICES:
        count = per_ticket(service, args.tickets, args.warm, args.rounds)
        print(f"{service}: {count:,.0f} instructions per ticket ({args.tickets} tickets)")


if __name__ == "__main__":
    main()
