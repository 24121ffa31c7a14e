"""`ticketroute deadletter`: list the dead letters with their reasons, replay chosen ones once
fixed, against the embedded broker with both services running."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path

import pytest

from tests.support.checks import audit, wait_all_routed
from tests.support.processes import System
from tests.support.tickets import Ref, component, ticket_event
from ticketroute.deadletter import (
    REPLAYED_FROM,
    DeadLetterError,
    list_dead_letters,
    register,
    replay,
)

pytestmark = pytest.mark.integration  # every test here runs on the embedded broker


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketroute")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


async def _dead_for(system: System, keys: set[bytes], timeout: float = 30) -> None:
    await system.wait_until(
        lambda: keys <= {r.key for r in system.outputs["tickets.deadletter"]},
        timeout=timeout,
        what="dead letters",
    )


async def test_list_and_replay_fixed_dead_letters(
    faults: System,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrap = faults.broker.bootstrap_servers
    run = uuid.uuid4().hex[:6]
    broken_json, bad_severity, bad_zone = (f"T-{run}-{n}" for n in ("json", "sev", "tz"))
    sev = ticket_event(bad_severity, components=[component(Ref.NETAPP, True)], severity=7)
    tz = ticket_event(bad_zone, customer={"timezone": "Europe/Atlantis"})
    sent = {
        broken_json: b'{"specversion": "1.0", "id": "' + run.encode() + b'", "data": {',
        bad_severity: json.dumps(sev).encode(),
        bad_zone: json.dumps(tz).encode(),
    }
    for key, value in sent.items():
        await faults.producer.send_and_wait(
            "tickets.incoming", value, key=key.encode(), headers=[("x-origin", b"crm-7")]
        )
    await _dead_for(faults, {k.encode() for k in sent})

    # list: every one, with its reason and where it came from.
    letters = {d.key.decode(): d for d in await list_dead_letters(bootstrap) if d.key}
    assert {k: letters[k].error_type for k in sent} == {
        broken_json: "invalid_json",
        bad_severity: "invalid_event",
        bad_zone: "invalid_event",
    }
    assert "severity" in (letters[bad_severity].error_message or "")
    assert "Europe/Atlantis" in (letters[bad_zone].error_message or "")
    for key, value in sent.items():
        d = letters[key]
        assert d.value == value
        assert d.header("source.topic") == "tickets.incoming"
        assert d.source
        assert d.source.startswith("tickets.incoming/")
        assert d.as_json()["source_offset"] is not None

    # The command line, human and --json.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    args = _parser().parse_args(["deadletter", "list"])
    assert await asyncio.to_thread(args.run, args) == 0
    text = capsys.readouterr().out
    for key in sent:
        assert letters[key].ref in text
        assert json.dumps(key) in text
    assert "invalid_json" in text
    assert "Europe/Atlantis" in text
    args = _parser().parse_args(["deadletter", "list", "--json", "--bootstrap", bootstrap])
    assert await asyncio.to_thread(args.run, args) == 0
    listed = {d["key"]: d for d in json.loads(capsys.readouterr().out)}
    assert listed[bad_zone]["error_type"] == "invalid_event"
    assert listed[bad_zone]["source_topic"] == "tickets.incoming"

    # replay with a fix: the corrected ticket is routed; headers without the error ones.
    fixed = ticket_event(bad_zone, customer={"timezone": "Europe/Berlin"})
    fix_file = tmp_path / "fixed.json"
    fix_file.write_text(json.dumps(fixed))
    args = _parser().parse_args(
        ["deadletter", "replay", "--offset", letters[bad_zone].ref, "--fix-file", str(fix_file)]
    )
    assert await asyncio.to_thread(args.run, args) == 0
    out = capsys.readouterr().out
    assert f"replayed {letters[bad_zone].ref}" in out
    assert "fixed" in out
    await wait_all_routed(faults, {(bad_zone, 1)}, 30, "the fixed ticket")

    # replay unchanged: it fails again, and the new dead letter says it was a replay.
    (again,) = await replay(bootstrap, [letters[bad_severity].ref])
    assert again.topic == "tickets.incoming"
    await faults.wait_until(
        lambda: (
            len([r for r in faults.outputs["tickets.deadletter"] if r.key == bad_severity.encode()])
            == 2
        ),
        what="the replayed bad ticket dead-lettered again",
    )
    second = [r for r in faults.outputs["tickets.deadletter"] if r.key == bad_severity.encode()][-1]
    headers = dict(second.headers)
    assert second.value == sent[bad_severity]
    assert headers["error.type"] == b"invalid_event"
    assert headers[REPLAYED_FROM] == f"tickets.deadletter:{letters[bad_severity].ref}".encode()
    assert headers["x-origin"] == b"crm-7"
    assert not audit(faults, {(bad_severity, 1)}).routed


async def test_replay_refuses_what_it_cannot_do(faults: System) -> None:
    bootstrap = faults.broker.bootstrap_servers
    keys = [f"T-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    for key in keys:  # spread over partitions, so bare offsets become ambiguous
        await faults.producer.send_and_wait("tickets.incoming", b"not json", key=key.encode())
    await _dead_for(faults, {k.encode() for k in keys})
    letters = [d for d in await list_dead_letters(bootstrap) if d.key and d.key.decode() in keys]
    offsets = [d.offset for d in letters]
    shared = next(o for o in offsets if offsets.count(o) > 1)
    with pytest.raises(DeadLetterError, match="several partitions"):
        await replay(bootstrap, [str(shared)])
    with pytest.raises(DeadLetterError, match="no dead letter"):
        await replay(bootstrap, ["0:999999"])
    with pytest.raises(DeadLetterError, match="not OFFSET"):
        await replay(bootstrap, ["../1"])
    with pytest.raises(DeadLetterError, match="replaces one"):
        await replay(bootstrap, [letters[0].ref, letters[1].ref], fix=b"{}")
    with pytest.raises(DeadLetterError, match="--offset, or --all"):
        await replay(bootstrap, [])
    # A router dead letter (from tickets.enriched) is not replayed to tickets.incoming unless
    # the target is named.
    foreign = f"T-{uuid.uuid4().hex[:8]}"
    meta = await faults.producer.send_and_wait(
        "tickets.deadletter",
        b"an enriched event",
        key=foreign.encode(),
        headers=[("error.type", b"processing_error"), ("source.topic", b"tickets.enriched")],
    )
    ref = f"{meta.partition}:{meta.offset}"
    with pytest.raises(DeadLetterError, match=r"did not come from tickets\.incoming"):
        await replay(bootstrap, [ref])
    (done,) = await replay(bootstrap, [ref], to="tickets.enriched", allow_other_source=True)
    assert done.topic == "tickets.enriched"
    # An absent topic lists nothing (and is not created).
    assert await list_dead_letters(bootstrap, "no.such.topic", idle_seconds=0.5) == []
