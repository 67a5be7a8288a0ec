"""Customer ids cannot be forged from outside (SPEC section 4).

With CMDRDATA_BAGGAGE_SECRET set, customer_context and set_customer_id sign the customer
entry with an HMAC property (``;cmdrdata.sig=v1.<id mac>.<metadata mac>``), and
read_attribution only counts validly signed entries; metadata counts only beside one and
only when it matches the signature. One WARNING per reason; the secret is never logged.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context.context import Context

from opentelemetry_instrumentation_cmdrdata import customer
from opentelemetry_instrumentation_cmdrdata.customer import (
    context_without_attribution,
    customer_context,
    read_attribution,
    reset_customer_id,
    set_customer_id,
)
from opentelemetry_instrumentation_cmdrdata.semconv import CMDRDATA_CUSTOMER_ID
from tests.compat import otel_api_at_least

SECRET = "s3cr3t-Signing-Key-for-tests-0123456789"
OTHER_SECRET = "another-secret-of-another-deployment-987"
PROPAGATOR = W3CBaggagePropagator()
LOGGER_NAME = "opentelemetry_instrumentation_cmdrdata.customer"
ROOT = Path(__file__).resolve().parents[1]


def use_secret(value: str | None) -> None:
    if value is None:
        os.environ.pop(customer.SECRET_ENV, None)
    else:
        os.environ[customer.SECRET_ENV] = value
    customer._reload_settings()


@pytest.fixture(autouse=True)
def secret() -> Iterator[str]:
    saved = os.environ.get(customer.SECRET_ENV)
    use_secret(SECRET)
    try:
        yield SECRET
    finally:
        use_secret(saved)


def signed_header(customer_id: str, **metadata: object) -> str:
    with customer_context(customer_id, **metadata):
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier)
    return carrier["baggage"]


def receive(header: str) -> Context:
    """What a service does with an inbound request: extract into a fresh context."""
    return PROPAGATOR.extract({"baggage": header}, Context())


def entries(header: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in header.split(","))


def join(pairs: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in pairs.items())


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER_NAME and r.levelno == logging.WARNING
    ]


# --- accepted -------------------------------------------------------------------------


def test_signed_entry_is_accepted_after_a_header_round_trip(
    caplog: pytest.LogCaptureFixture,
) -> None:
    header = signed_header("cust-42", plan="pro")
    assert read_attribution(receive(header)) == ("cust-42", {"plan": "pro"})
    assert warnings(caplog) == []


@pytest.mark.parametrize("customer_id", ["Müller@example.com", "org:team/😀", "a;b,c=d %41"])
def test_signed_unicode_ids_survive_the_round_trip(customer_id: str) -> None:
    header = signed_header(customer_id, city="Zürich")
    assert read_attribution(receive(header)) == (customer_id, {"city": "Zürich"})


def test_signature_is_a_property_of_the_customer_entry() -> None:
    with customer_context("cust-42"):
        raw = baggage.get_baggage(CMDRDATA_CUSTOMER_ID)
        assert isinstance(raw, str)
        customer_id, _, signature = raw.partition(";cmdrdata.sig=")
        assert customer_id == "cust-42"
        version, id_mac, metadata_mac = signature.split(".")
        assert version == "v1"
        assert len(id_mac) == len(metadata_mac) == 43  # unpadded base64url SHA-256
        assert SECRET not in raw
        # The id handed to the instrumentor never carries the signature.
        assert read_attribution() == ("cust-42", {})
    # Python's propagator escapes ";" and "=", so it travels inside the value.
    assert "cmdrdata.customer_id=cust-42%3Bcmdrdata.sig%3Dv1." in signed_header("cust-42")


@pytest.mark.skipif(
    not otel_api_at_least("1.45.0"),
    reason="opentelemetry-api < 1.45 drops inbound baggage properties spaced around ; and =",
)
def test_real_w3c_property_from_another_sdk_is_accepted() -> None:
    # Another language's SDK forwards the property unescaped, maybe with optional spaces.
    value = entries(signed_header("cust 42", plan="pro"))[CMDRDATA_CUSTOMER_ID]
    customer_part, signature = value.split("%3Bcmdrdata.sig%3D")
    meta = "cmdrdata.metadata.plan=pro"
    for header in (
        f"{CMDRDATA_CUSTOMER_ID}={customer_part};cmdrdata.sig={signature},{meta}",
        f"{CMDRDATA_CUSTOMER_ID}={customer_part} ; cmdrdata.sig = {signature};ttl=60,{meta}",
    ):
        assert read_attribution(receive(header)) == ("cust 42", {"plan": "pro"})


def test_set_customer_id_signs_as_well() -> None:
    token = set_customer_id("cust-42", plan="pro")
    try:
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier)
    finally:
        reset_customer_id(token)
    assert "cmdrdata.sig" in carrier["baggage"]
    assert read_attribution(receive(carrier["baggage"])) == ("cust-42", {"plan": "pro"})


def test_signed_baggage_survives_a_hop_through_a_middle_service() -> None:
    header = signed_header("cust-42", plan="pro")
    # The middle service adds its own baggage and forwards everything.
    middle = baggage.set_baggage("hop", "2", receive(header))
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, middle)
    assert read_attribution(receive(carrier["baggage"])) == ("cust-42", {"plan": "pro"})


def test_signed_header_is_accepted_by_another_process() -> None:
    header = signed_header("Müller/😀 org:team", plan="pro")
    script = (
        "import json, sys\n"
        "from opentelemetry.baggage.propagation import W3CBaggagePropagator\n"
        "from opentelemetry.context.context import Context\n"
        "from opentelemetry_instrumentation_cmdrdata.customer import read_attribution\n"
        "ctx = W3CBaggagePropagator().extract({'baggage': sys.argv[1]}, Context())\n"
        "print(json.dumps(read_attribution(ctx)))\n"
    )
    env = {**os.environ, customer.SECRET_ENV: SECRET, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, header],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == ["Müller/😀 org:team", {"plan": "pro"}]


def test_nested_blocks_re_sign_merged_metadata() -> None:
    with customer_context("acme", plan="pro"):
        with customer_context("acme", region="eu"):
            assert read_attribution() == ("acme", {"plan": "pro", "region": "eu"})
            carrier: dict[str, str] = {}
            PROPAGATOR.inject(carrier)
        with customer_context("globex"):
            assert read_attribution() == ("globex", {})
        assert read_attribution() == ("acme", {"plan": "pro"})
    assert read_attribution(receive(carrier["baggage"])) == (
        "acme",
        {"plan": "pro", "region": "eu"},
    )


# --- rejected -------------------------------------------------------------------------


def test_unsigned_entry_is_ignored_with_its_metadata(caplog: pytest.LogCaptureFixture) -> None:
    inbound = receive("cmdrdata.customer_id=cust-42,cmdrdata.metadata.plan=enterprise")
    assert read_attribution(inbound) == (None, {})
    [message] = warnings(caplog)
    assert message.startswith("unsigned cmdrdata.customer_id baggage ignored")
    assert "cust-42" not in message


def test_entry_set_by_hand_with_the_baggage_api_is_unsigned() -> None:
    token = otel_context.attach(baggage.set_baggage(CMDRDATA_CUSTOMER_ID, "cust-42"))
    try:
        assert read_attribution() == (None, {})
    finally:
        otel_context.detach(token)


def test_swapped_id_under_a_valid_signature_is_rejected() -> None:
    pairs = entries(signed_header("cust-42"))
    pairs[CMDRDATA_CUSTOMER_ID] = pairs[CMDRDATA_CUSTOMER_ID].replace("cust-42", "cust-43", 1)
    assert read_attribution(receive(join(pairs))) == (None, {})


def test_signature_taken_from_another_id_is_rejected() -> None:
    victim = entries(signed_header("victim"))[CMDRDATA_CUSTOMER_ID]
    attacker = entries(signed_header("attacker"))[CMDRDATA_CUSTOMER_ID]
    forged = "victim" + attacker.removeprefix("attacker")
    assert forged != victim
    assert read_attribution(receive(f"{CMDRDATA_CUSTOMER_ID}={forged}")) == (None, {})


def test_entry_signed_with_another_secret_is_rejected() -> None:
    use_secret(OTHER_SECRET)
    header = signed_header("cust-42", plan="pro")
    use_secret(SECRET)
    assert read_attribution(receive(header)) == (None, {})


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "v1",
        "v1.abc",
        "v1.a.b.c",
        "v2.{id}.{meta}",
        "v1.{meta}.{id}",
        "v1.ü.x",
        "v1.{id}x.{meta}",
    ],
)
def test_malformed_signatures_are_rejected(signature: str) -> None:
    value = entries(signed_header("cust-42"))[CMDRDATA_CUSTOMER_ID]
    id_mac, meta_mac = value.split("%3Bcmdrdata.sig%3Dv1.")[1].split(".")
    forged = signature.format(id=id_mac, meta=meta_mac)
    header = f"{CMDRDATA_CUSTOMER_ID}=cust-42;cmdrdata.sig={forged}"
    assert read_attribution(receive(header)) == (None, {})


def test_metadata_added_under_a_signed_id_is_ignored_but_the_id_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    header = signed_header("cust-42", plan="pro")
    tampered = header + ",cmdrdata.metadata.discount=100"
    assert read_attribution(receive(tampered)) == ("cust-42", {})
    [message] = warnings(caplog)
    assert "cmdrdata.metadata" in message


def test_metadata_changed_removed_or_moved_under_a_signed_id_is_ignored() -> None:
    pairs = entries(signed_header("cust-42", plan="pro", region="eu"))
    changed = {**pairs, "cmdrdata.metadata.plan": "enterprise"}
    assert read_attribution(receive(join(changed))) == ("cust-42", {})

    removed = {k: v for k, v in pairs.items() if not k.endswith(".region")}
    assert read_attribution(receive(join(removed))) == ("cust-42", {})

    # Metadata signed for another customer (its metadata mac spliced into this id's
    # signature) does not fit this one: the metadata mac covers the id too.
    other = entries(signed_header("cust-7", plan="enterprise"))
    own_id_mac = pairs[CMDRDATA_CUSTOMER_ID].split("%3Bcmdrdata.sig%3Dv1.")[1].split(".")[0]
    other_meta_mac = other[CMDRDATA_CUSTOMER_ID].rsplit(".", 1)[1]
    moved = {
        CMDRDATA_CUSTOMER_ID: f"cust-42;cmdrdata.sig=v1.{own_id_mac}.{other_meta_mac}",
        "cmdrdata.metadata.plan": "enterprise",
    }
    assert read_attribution(receive(join(moved))) == ("cust-42", {})
    spliced_back = {**moved, CMDRDATA_CUSTOMER_ID: f"cust-42;cmdrdata.sig=v1.{own_id_mac}.x"}
    assert read_attribution(receive(join(spliced_back))) == ("cust-42", {})


def test_forged_inbound_metadata_is_not_laundered_by_a_nested_block() -> None:
    # An attacker sends the right id unsigned, with metadata of their choosing; the
    # service then opens a block for that same customer: the inbound metadata must not
    # be merged in and signed.
    inbound = receive("cmdrdata.customer_id=cust-42,cmdrdata.metadata.plan=enterprise")
    token = otel_context.attach(inbound)
    try:
        with customer_context("cust-42", region="eu"):
            assert read_attribution() == ("cust-42", {"region": "eu"})
            carrier: dict[str, str] = {}
            PROPAGATOR.inject(carrier)
    finally:
        otel_context.detach(token)
    assert read_attribution(receive(carrier["baggage"])) == ("cust-42", {"region": "eu"})


def test_one_warning_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    unsigned = receive("cmdrdata.customer_id=cust-42")
    forged = receive("cmdrdata.customer_id=cust-42;cmdrdata.sig=v1.x.y")
    extra_meta = receive(signed_header("cust-42") + ",cmdrdata.metadata.x=1")
    for _ in range(5):
        read_attribution(unsigned)
        read_attribution(forged)
        read_attribution(extra_meta)
    messages = warnings(caplog)
    assert len(messages) == 3
    assert sum(m.startswith("unsigned") for m in messages) == 1
    assert sum(m.startswith("forged") for m in messages) == 1


def test_the_secret_never_appears_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    use_secret(OTHER_SECRET)
    other = signed_header("cust-42", plan="pro")
    use_secret(SECRET)
    for header in (
        other,
        "cmdrdata.customer_id=cust-42",
        f"cmdrdata.customer_id=cust-42;cmdrdata.sig=v1.{SECRET}.{SECRET}",
        signed_header("cust-42") + ",cmdrdata.metadata.x=1",
    ):
        read_attribution(receive(header))
    assert len(warnings(caplog)) == 3
    assert SECRET not in caplog.text
    assert OTHER_SECRET not in caplog.text
    assert all("cust-42" not in message for message in warnings(caplog))


# --- configuration --------------------------------------------------------------------


def test_without_a_secret_everything_is_accepted_and_signatures_are_stripped() -> None:
    header = signed_header("cust-42", plan="pro")
    use_secret(None)
    assert read_attribution(receive(header)) == ("cust-42", {"plan": "pro"})
    assert read_attribution(receive("cmdrdata.customer_id=cust-7")) == ("cust-7", {})
    with customer_context("cust-9"):
        assert baggage.get_baggage(CMDRDATA_CUSTOMER_ID) == "cust-9"


def test_a_blank_secret_means_no_signing() -> None:
    use_secret("   ")
    assert read_attribution(receive("cmdrdata.customer_id=cust-7")) == ("cust-7", {})


def test_the_secret_is_cached_until_settings_are_reloaded() -> None:
    os.environ[customer.SECRET_ENV] = OTHER_SECRET
    header = signed_header("cust-42")  # still signed with SECRET
    customer._reload_settings()
    assert read_attribution(receive(header)) == (None, {})
    use_secret(SECRET)
    assert read_attribution(receive(header)) == ("cust-42", {})


def test_stripping_removes_the_signed_entry_too() -> None:
    with customer_context("cust-42", plan="pro"):
        carrier: dict[str, str] = {}
        PROPAGATOR.inject(carrier, context_without_attribution())
    assert carrier == {}
