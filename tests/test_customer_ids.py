"""Which customer ids and metadata are accepted, and that they survive the W3C header.

Contract (SPEC section 2): a customer id is any Unicode string of 1 to 256 characters after
trimming; the trimmed id is billed and comes back intact from a W3C ``baggage`` header;
anything else raises (TypeError for a non-string, ValueError otherwise) and nothing is
truncated. A bad per-call ``customer_id=`` never raises: it is unattributed, with one
WARNING.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context.context import Context

from opentelemetry_instrumentation_cmdrdata import customer
from opentelemetry_instrumentation_cmdrdata.customer import (
    MAX_CUSTOMER_ID_LENGTH,
    coerce_call_customer_id,
    coerce_call_metadata,
    customer_context,
    read_attribution,
    set_customer_id,
)
from opentelemetry_instrumentation_cmdrdata.semconv import CMDRDATA_CUSTOMER_ID
from tests.secret_env import no_secret  # noqa: F401  (autouse)

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
    "tab\tinside",
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
        lambda s: s.strip() == s and s != "" and ";" not in s
    )
)
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_trimmed_unicode_id_survives_the_header_round_trip(customer_id: str) -> None:
    with customer_context(customer_id):
        _, extracted = header_round_trip()
    assert read_attribution(extracted) == (customer_id, {})


@given(
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s != ""),
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s != ""),
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


@pytest.mark.parametrize("bad", [None, 42, 4.2, b"cust-42", ["cust-42"], object()])
def test_non_string_ids_raise_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="customer_id must be a str"):
        customer_context(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="customer_id must be a str"):
        set_customer_id(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", " ", "\t\n", "\u3000"])
def test_empty_or_whitespace_ids_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        customer_context(bad)


def test_257_characters_raise_and_the_message_shows_only_a_prefix() -> None:
    too_long = "abcdefghij" * 25 + "klmnopq"
    assert len(too_long) == MAX_CUSTOMER_ID_LENGTH + 1
    with pytest.raises(ValueError, match="257 characters") as error:
        customer_context(too_long)
    message = str(error.value)
    assert "256" in message
    assert too_long not in message
    assert "abcdefghij" in message  # a short prefix helps find the culprit
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
