"""Which customer ids and metadata are accepted, and that they survive the W3C header.

Contract (SPEC section 2): a customer id is any Unicode string of 1 to 256 characters after
trimming, control characters (category Cc) excepted; the trimmed id is billed and comes back
intact from a W3C ``baggage`` header; anything else raises (TypeError for a non-string,
ValueError otherwise) and nothing is truncated. A bad per-call ``customer_id=`` never raises:
it is unattributed, with one WARNING. A bad id in inbound baggage or on another
instrumentation's span goes to the default customer, and no log line shows it.
"""

from __future__ import annotations

import logging
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context.context import Context

from cmdrdata_exporter import span_to_event
from cmdrdata_exporter.config import resolve
from cmdrdata_exporter.diagnostics import Drops
from opentelemetry_instrumentation_cmdrdata import customer
from opentelemetry_instrumentation_cmdrdata.customer import (
    MAX_CUSTOMER_ID_LENGTH,
    coerce_call_customer_id,
    coerce_call_metadata,
    customer_context,
    read_attribution,
    set_customer_id,
)
from opentelemetry_instrumentation_cmdrdata.semconv import (
    CMDRDATA_CUSTOMER_ID,
    CMDRDATA_METADATA_PREFIX,
)
from tests.secret_env import no_secret  # noqa: F401  (autouse)
from tests.span_maker import usage_spans

PROPAGATOR = W3CBaggagePropagator()
# The propagator's own limits (opentelemetry-api 1.45.2).
MAX_PAIR_LENGTH = 4096
MAX_HEADER_LENGTH = 8192

ODD_IDS = [
    "user@example.com",
    "org:team/user",
    "Müller & Söhne",
    "客户-42",
    "😀🎉 party",
    "a@b:c/d;e,f=g%h",
    "with  inner   spaces",
    "+plus+sign+",
    "100%",
    "%41%42",
    "a;b=c;d",
    "emoji\u200djoiner",  # a format character (Cf), not a control one
    "quote\"and'apostrophe",
    "x" * MAX_CUSTOMER_ID_LENGTH,
    "😀" * MAX_CUSTOMER_ID_LENGTH,
    "ü" * MAX_CUSTOMER_ID_LENGTH,
]


def header_round_trip(carrier_context: Context | None = None) -> tuple[str, Context]:
    """Inject into a ``baggage`` header and extract it into a fresh context."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, carrier_context)
    header = carrier.get("baggage", "")
    return header, PROPAGATOR.extract({"baggage": header}, Context())


# Inside an id (surrounding ones are trimmed like any whitespace): C0, DEL and C1.
CONTROL_IDS = {
    "newline": "acme\n42",
    "nul": "acme\x0042",
    "tab": "acme\t42",
    "carriage-return": "acme\r\n42",
    "escape": "acme\x1b[31m42",
    "del": "acme\x7f42",
    "next-line": "acme\x8542",  # C1: NEL
    "c1-last": "acme\x9f42",
}


def has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def our_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "opentelemetry_instrumentation_cmdrdata.customer"
    ]


# --- accepted ids ---------------------------------------------------------------------


@pytest.mark.parametrize("customer_id", ODD_IDS)
def test_odd_ids_are_accepted_and_survive_the_header_round_trip(customer_id: str) -> None:
    with customer_context(customer_id, plan="pro"):
        assert read_attribution() == (customer_id, {"plan": "pro"})
        header, extracted = header_round_trip()
    assert header.isascii()
    assert all(len(pair) <= MAX_PAIR_LENGTH for pair in header.split(","))
    assert read_attribution(extracted) == (customer_id, {"plan": "pro"})


@given(
    customer_id=st.text(min_size=1, max_size=MAX_CUSTOMER_ID_LENGTH).filter(
        lambda s: s.strip() == s and s != "" and ";" not in s and not has_control(s)
    )
)
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_trimmed_unicode_id_survives_the_header_round_trip(customer_id: str) -> None:
    with customer_context(customer_id):
        _, extracted = header_round_trip()
    assert read_attribution(extracted) == (customer_id, {})


@given(
    st.text(min_size=1, max_size=40).filter(
        lambda s: s.strip() == s and s != "" and not has_control(s)
    ),
    st.text(min_size=1, max_size=40).filter(
        lambda s: s.strip() == s and s != "" and not has_control(s)
    ),
)
@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_ids_with_semicolons_survive_the_round_trip(left: str, right: str) -> None:
    customer_id = f"{left};{right}"
    try:
        block = customer_context(customer_id)
    except ValueError:
        # Only ids that look like our signature property are refused.
        assert "cmdrdata.sig" in customer_id.replace(" ", "").replace("\t", "")
        return
    with block:
        _, extracted = header_round_trip()
    assert read_attribution(extracted) == (customer_id, {})


def test_surrounding_whitespace_is_trimmed_and_the_trimmed_id_is_billed() -> None:
    with customer_context(" \t cust-42 \n", plan="  pro "):
        assert baggage.get_baggage(CMDRDATA_CUSTOMER_ID) == "cust-42"
        assert read_attribution() == ("cust-42", {"plan": "pro"})
        _, extracted = header_round_trip()
    assert read_attribution(extracted) == ("cust-42", {"plan": "pro"})


def test_exactly_256_characters_after_trimming_is_accepted() -> None:
    customer_id = "y" * MAX_CUSTOMER_ID_LENGTH
    with customer_context(f"   {customer_id}   "):
        assert read_attribution() == (customer_id, {})


def test_worst_case_id_fits_the_propagator_limits() -> None:
    longest = "😀" * MAX_CUSTOMER_ID_LENGTH  # 4 UTF-8 bytes, 12 characters encoded
    with customer_context(longest, plan="enterprise", region="eu-west-1"):
        header, extracted = header_round_trip()
    pairs = header.split(",")
    assert max(len(pair) for pair in pairs) <= MAX_PAIR_LENGTH
    assert len(header) <= MAX_HEADER_LENGTH
    assert read_attribution(extracted) == (longest, {"plan": "enterprise", "region": "eu-west-1"})


# --- refused ids ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [42, 4.2, b"cust-42", ["cust-42"], object()])
def test_non_string_ids_raise_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="customer_id must be a str"):
        customer_context(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="customer_id must be a str"):
        set_customer_id(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", " ", "\t\n", "\u3000"])
def test_empty_or_whitespace_ids_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        customer_context(bad)


def test_257_characters_raise_and_the_message_shows_none_of_the_id() -> None:
    too_long = "abcdefghij" * 25 + "klmnopq"
    assert len(too_long) == MAX_CUSTOMER_ID_LENGTH + 1
    with pytest.raises(ValueError, match="257 characters") as error:
        customer_context(too_long)
    message = str(error.value)
    assert "256" in message
    assert "abcdefghij" not in message  # customer ids never go into exceptions, not even a part
    assert len(message) < 300


def test_huge_id_is_not_repeated_in_the_error() -> None:
    huge = "z" * 1_000_000
    with pytest.raises(ValueError) as error:
        set_customer_id(huge)
    assert len(str(error.value)) < 300
    assert read_attribution() == (None, {})


def test_unpaired_surrogates_cannot_travel_and_are_refused() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        customer_context("cust-\ud800")


@pytest.mark.parametrize("bad", CONTROL_IDS.values(), ids=CONTROL_IDS.keys())
def test_control_characters_inside_an_id_raise_without_showing_it(bad: str) -> None:
    for make in (customer_context, set_customer_id):
        with pytest.raises(ValueError, match="control character") as error:
            make(bad)
        assert "acme" not in str(error.value)
    assert read_attribution() == (None, {})


@given(st.characters(categories=["Cc"]))
@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_control_character_is_refused_inside_an_id(control: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        customer_context(f"a{control}b")


def test_surrounding_newlines_are_trimmed_like_other_whitespace() -> None:
    with customer_context("\ncust-42\r\n"):
        assert read_attribution() == ("cust-42", {})


@pytest.mark.parametrize("bad", ["x;cmdrdata.sig=v1.a.b", "x ; cmdrdata.sig = y"])
def test_ids_that_look_like_the_signature_property_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"cmdrdata\.sig"):
        customer_context(bad)


# --- metadata -------------------------------------------------------------------------


def test_metadata_values_are_stored_as_strings() -> None:
    with customer_context("c", s="text", i=3, f=1.5, yes=True, no=False, empty=""):
        assert read_attribution() == (
            "c",
            {"s": "text", "i": "3", "f": "1.5", "yes": "true", "no": "false", "empty": ""},
        )


@pytest.mark.parametrize("bad", [None, [1], {"a": 1}, b"x", object()])
def test_metadata_values_of_other_types_raise_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="value for 'plan'"):
        customer_context("c", plan=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["plan", "_private", "team.name", "cost-center", "a" * 64])
def test_metadata_keys_may_hold_dots_and_dashes(key: str) -> None:
    with customer_context("c", **{key: "v"}):
        _, extracted = header_round_trip()
    assert read_attribution(extracted) == ("c", {key: "v"})


@pytest.mark.parametrize("key", ["", "1st", "-x", ".x", "has space", "a=b", "ключ", "a" * 65])
def test_bad_metadata_keys_raise_value_error(key: str) -> None:
    with pytest.raises(ValueError, match="metadata key"):
        customer_context("c", **{key: "v"})


def test_metadata_value_longer_than_256_characters_raises() -> None:
    with customer_context("c", note="n" * 256):
        pass
    with pytest.raises(ValueError, match="257 characters"):
        customer_context("c", note="n" * 257)


def test_too_many_metadata_entries_raise() -> None:
    with customer_context("c", **{f"k{i}": i for i in range(customer.MAX_METADATA_ENTRIES)}):
        pass
    with pytest.raises(ValueError, match="entries"):
        customer_context("c", **{f"k{i}": i for i in range(customer.MAX_METADATA_ENTRIES + 1)})


def test_entries_too_large_for_the_baggage_header_raise_instead_of_being_dropped() -> None:
    wide = "😀" * 256
    block = customer_context(wide, a=wide, b=wide)  # each part alone is within its limit
    with pytest.raises(ValueError, match="bytes in the W3C baggage header"), block:
        pass
    assert read_attribution() == (None, {})


def test_merged_metadata_counts_toward_the_limits() -> None:
    half = customer.MAX_METADATA_ENTRIES // 2 + 1
    with customer_context("c", **{f"a{i}": i for i in range(half)}):
        block = customer_context("c", **{f"b{i}": i for i in range(half)})
        with pytest.raises(ValueError, match="entries"), block:
            pass
        # Another customer does not inherit the outer metadata, so it fits.
        with customer_context("d", **{f"b{i}": i for i in range(half)}):
            assert len(read_attribution()[1]) == half


# --- per-call arguments ---------------------------------------------------------------


def test_call_customer_id_good_values_are_trimmed(caplog: pytest.LogCaptureFixture) -> None:
    assert coerce_call_customer_id(" cust-42 ") == "cust-42"
    assert coerce_call_customer_id("org:team/ü") == "org:team/ü"
    assert coerce_call_customer_id(None) is None
    assert our_warnings(caplog) == []


def test_call_customer_id_bad_values_give_none_and_one_warning_per_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_like = "q" * 300
    for _ in range(3):
        assert coerce_call_customer_id(42) is None
        assert coerce_call_customer_id("   ") is None
        assert coerce_call_customer_id(secret_like) is None
    warnings = our_warnings(caplog)
    assert len(warnings) == 3
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert all("unattributed" in r.getMessage() for r in warnings)
    assert "q" * 10 not in caplog.text


def test_call_customer_id_with_a_control_character_gives_none_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for bad in CONTROL_IDS.values():
        assert coerce_call_customer_id(bad) is None
    warnings = our_warnings(caplog)
    assert len(warnings) == 1
    assert "control character" in warnings[0].getMessage()
    assert "unattributed" in warnings[0].getMessage()
    assert "acme" not in caplog.text


# --- inbound baggage ------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded", ["acme%0A42", "acme%0042", "acme%09%0942", "acme%C2%8542"], ids=str
)
def test_inbound_baggage_id_with_a_control_character_is_ignored_with_one_warning(
    encoded: str, caplog: pytest.LogCaptureFixture
) -> None:
    header = f"{CMDRDATA_CUSTOMER_ID}={encoded},{CMDRDATA_METADATA_PREFIX}plan=pro,app=1"
    inbound = PROPAGATOR.extract({"baggage": header}, Context())
    # The propagator hands the decoded control character over: it is ours to refuse.
    assert has_control(baggage.get_baggage(CMDRDATA_CUSTOMER_ID, inbound))
    for _ in range(3):
        assert read_attribution(inbound) == (None, {})
    warnings = our_warnings(caplog)
    assert len(warnings) == 1
    assert "control character" in warnings[0].getMessage()
    assert "acme" not in caplog.text


def test_inbound_baggage_problems_warn_once_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    for bad in ("acme\n42", "   ", "x" * 300, "acme\x0042", "  ", "y" * 301):
        ctx = baggage.set_baggage(CMDRDATA_CUSTOMER_ID, bad, Context())
        assert read_attribution(ctx) == (None, {})
    messages = [r.getMessage() for r in our_warnings(caplog)]
    assert len(messages) == 3
    assert sum("control character" in m for m in messages) == 1
    assert sum("empty" in m for m in messages) == 1
    assert sum("characters long" in m for m in messages) == 1
    assert "acme" not in caplog.text and "x" * 20 not in caplog.text


# --- the exporter: ids on spans of other instrumentations -----------------------------


@pytest.mark.parametrize("bad", CONTROL_IDS.values(), ids=CONTROL_IDS.keys())
def test_exporter_bills_a_foreign_span_id_with_a_control_character_to_the_default_customer(
    bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = resolve({"span_source": "genai", "default_customer_id": "house"}, {})
    (span,) = usage_spans(scope="some.other.instrumentation", cmdrdata__customer_id=bad)
    drops = Drops()
    with caplog.at_level(logging.DEBUG):
        first = span_to_event(span, settings, drops)
        second = span_to_event(span, settings, drops)
    assert first is not None and second is not None
    assert first["customer_id"] == second["customer_id"] == "house"
    assert drops.snapshot() == {"control_customer_id": 2}
    assert len(caplog.records) == 1  # logged once, then only counted
    assert "acme" not in caplog.text


def test_exporter_trims_a_foreign_span_id_as_customer_context_does() -> None:
    settings = resolve({"span_source": "genai"}, {})
    (span,) = usage_spans(scope="some.other.instrumentation", cmdrdata__customer_id=" c-7\n")
    drops = Drops()
    event = span_to_event(span, settings, drops)
    assert event is not None and event["customer_id"] == "c-7"
    assert drops.snapshot() == {}


def test_call_metadata_is_stringified(caplog: pytest.LogCaptureFixture) -> None:
    assert coerce_call_metadata({"plan": "pro", "seats": 3, "trial": True, "r": 0.5}) == {
        "plan": "pro",
        "seats": "3",
        "trial": "true",
        "r": "0.5",
    }
    assert coerce_call_metadata(None) == {}
    assert coerce_call_metadata({}) == {}
    assert our_warnings(caplog) == []


def test_call_metadata_that_is_not_a_dict_gives_empty_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert coerce_call_metadata(["plan", "pro"]) == {}
    assert coerce_call_metadata("plan=pro") == {}
    assert len(our_warnings(caplog)) == 1


def test_call_metadata_bad_entries_are_left_out(caplog: pytest.LogCaptureFixture) -> None:
    value = {"ok": "yes", 7: "int key", "bad key": "x", "obj": object(), "long": "l" * 300}
    assert coerce_call_metadata(value) == {"ok": "yes"}
    assert len(our_warnings(caplog)) == 4
