"""customer_context / set_customer_id: the customer id in baggage, scoped to a block.

Contract (SPEC section 2): nested blocks override and restore; ``None`` is an anonymous
block (no customer, nothing of an outer one shows through); sync, async and threads behave
as contextvars do; the app's other baggage is left alone; the instrumentor reads the
attribution with read_attribution() and strips it with context_without_attribution().
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context.context import Context

from opentelemetry_instrumentation_cmdrdata import customer
from opentelemetry_instrumentation_cmdrdata.customer import (
    CustomerContext,
    context_without_attribution,
    customer_context,
    read_attribution,
    reset_customer_id,
    set_customer_id,
)
from opentelemetry_instrumentation_cmdrdata.semconv import (
    CMDRDATA_CUSTOMER_ID,
    CMDRDATA_METADATA_PREFIX,
)
from tests.secret_env import no_secret  # noqa: F401  (autouse)


@pytest.fixture
def app_baggage() -> Iterator[None]:
    """The application's own baggage entries, current for the test."""
    ctx = baggage.set_baggage("tenant", "t-1")
    ctx = baggage.set_baggage("feature", "beta", ctx)
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


# --- blocks ---------------------------------------------------------------------------


def test_block_puts_customer_and_metadata_into_baggage_and_removes_them_after() -> None:
    assert read_attribution() == (None, {})
    with customer_context("cust-42", plan="pro", seats=3, trial=False, ratio=0.5):
        assert baggage.get_baggage(CMDRDATA_CUSTOMER_ID) == "cust-42"
        assert baggage.get_baggage(CMDRDATA_METADATA_PREFIX + "plan") == "pro"
        assert read_attribution() == (
            "cust-42",
            {"plan": "pro", "seats": "3", "trial": "false", "ratio": "0.5"},
        )
    assert read_attribution() == (None, {})
    assert dict(baggage.get_all()) == {}


def test_enter_returns_the_block_with_trimmed_id_and_string_metadata() -> None:
    with customer_context("  cust-42 ", plan="pro", seats=2) as block:
        assert isinstance(block, CustomerContext)
        assert block.customer_id == "cust-42"
        assert block.metadata == {"plan": "pro", "seats": "2"}


def test_nested_block_with_another_customer_overrides_and_drops_outer_metadata() -> None:
    with customer_context("acme", plan="pro"):
        with customer_context("globex", region="eu"):
            # Metadata belongs to the customer it was set with.
            assert read_attribution() == ("globex", {"region": "eu"})
            with customer_context("initech"):
                assert read_attribution() == ("initech", {})
            assert read_attribution() == ("globex", {"region": "eu"})
        assert read_attribution() == ("acme", {"plan": "pro"})
    assert read_attribution() == (None, {})


def test_nested_block_with_the_same_customer_merges_metadata_inner_wins() -> None:
    with customer_context("acme", plan="pro", region="us"):
        with customer_context("acme", region="eu", team="ml"):
            assert read_attribution() == ("acme", {"plan": "pro", "region": "eu", "team": "ml"})
        assert read_attribution() == ("acme", {"plan": "pro", "region": "us"})


def test_same_customer_after_trimming_counts_as_the_same() -> None:
    with customer_context("acme", plan="pro"), customer_context(" acme ", seats=1):
        assert read_attribution() == ("acme", {"plan": "pro", "seats": "1"})


def test_block_restores_the_outer_customer_when_the_body_raises() -> None:
    with customer_context("outer"):
        with pytest.raises(RuntimeError), customer_context("inner"):
            raise RuntimeError("boom")
        assert read_attribution() == ("outer", {})


def test_one_block_object_can_be_nested_in_itself() -> None:
    block = customer_context("acme")
    with block:
        with customer_context("globex"), block:
            assert read_attribution() == ("acme", {})
        assert read_attribution() == ("acme", {})
    assert read_attribution() == (None, {})


def test_other_baggage_entries_are_kept_inside_and_after_the_block(app_baggage: None) -> None:
    with customer_context("cust-42", plan="pro"):
        assert baggage.get_baggage("tenant") == "t-1"
        assert baggage.get_baggage("feature") == "beta"
    assert dict(baggage.get_all()) == {"tenant": "t-1", "feature": "beta"}


def test_customer_entries_come_first_in_the_baggage(app_baggage: None) -> None:
    # The propagator drops entries from the end when the header overflows.
    with customer_context("cust-42", plan="pro"):
        keys = list(baggage.get_all())
    assert keys[:2] == [CMDRDATA_CUSTOMER_ID, CMDRDATA_METADATA_PREFIX + "plan"]


def test_metadata_key_customer_id_is_allowed_because_the_id_is_positional() -> None:
    with customer_context("acme", customer_id="legacy-7"):
        assert read_attribution() == ("acme", {"customer_id": "legacy-7"})


# --- None: an anonymous block --------------------------------------------------------


def test_none_block_inside_a_customer_block_has_no_customer_and_restores_the_outer(
    app_baggage: None,
) -> None:
    with customer_context("acme", plan="pro"):
        with customer_context(None) as anonymous:
            assert anonymous.customer_id is None
            assert read_attribution() == (None, {})
            # No entry of ours at all, so nothing of the outer customer travels on either.
            assert dict(baggage.get_all()) == {"tenant": "t-1", "feature": "beta"}
            with customer_context("globex"):
                assert read_attribution() == ("globex", {})
            assert read_attribution() == (None, {})
        assert read_attribution() == ("acme", {"plan": "pro"})
    assert dict(baggage.get_all()) == {"tenant": "t-1", "feature": "beta"}


def test_none_block_outside_any_customer_block_changes_nothing() -> None:
    with customer_context(None):
        assert read_attribution() == (None, {})
        assert dict(baggage.get_all()) == {}
    assert read_attribution() == (None, {})


def test_none_block_leaves_its_metadata_out_but_still_validates_it() -> None:
    with customer_context("acme", plan="pro"), customer_context(None, plan="free") as block:
        assert block.metadata == {}
        assert read_attribution() == (None, {})
        assert baggage.get_baggage(CMDRDATA_METADATA_PREFIX + "plan") is None
    with pytest.raises(TypeError, match="value for 'plan'"):
        customer_context(None, plan=["free"])  # type: ignore[arg-type]


def test_none_block_hides_an_inbound_customer_from_the_header_it_sends_on() -> None:
    propagator = W3CBaggagePropagator()
    inbound = propagator.extract(
        {"baggage": "cmdrdata.customer_id=acme,cmdrdata.metadata.plan=pro,app=1"}, Context()
    )
    token = otel_context.attach(inbound)
    try:
        assert read_attribution() == ("acme", {"plan": "pro"})
        with customer_context(None):
            outbound: dict[str, str] = {}
            propagator.inject(outbound)
        assert read_attribution() == ("acme", {"plan": "pro"})
    finally:
        otel_context.detach(token)
    assert outbound == {"baggage": "app=1"}


def test_none_block_restores_the_outer_customer_when_the_body_raises() -> None:
    with customer_context("outer"):
        with pytest.raises(RuntimeError), customer_context(None):
            raise RuntimeError("anonymous handler failed")
        assert read_attribution() == ("outer", {})


def test_set_customer_id_none_and_reset_inside_a_block() -> None:
    with customer_context("acme", plan="pro"):
        token = set_customer_id(None)
        try:
            assert read_attribution() == (None, {})
            inner = set_customer_id("globex")
            assert read_attribution() == ("globex", {})
            reset_customer_id(inner)
            assert read_attribution() == (None, {})
        finally:
            reset_customer_id(token)
        assert read_attribution() == ("acme", {"plan": "pro"})


def test_none_block_with_a_baggage_secret_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(customer.SECRET_ENV, "s3cret")
    customer._reload_settings()
    with customer_context("acme", plan="pro"):
        with customer_context(None):
            assert read_attribution() == (None, {})
            assert dict(baggage.get_all()) == {}
        assert read_attribution() == ("acme", {"plan": "pro"})


async def test_none_block_in_concurrent_tasks_stays_in_its_own_task() -> None:
    inside: list[str] = []
    both_inside = asyncio.Event()

    async def wait_for_the_other(name: str) -> None:
        inside.append(name)
        if len(inside) == 2:
            both_inside.set()
        await both_inside.wait()

    async def anonymous() -> list[tuple[str | None, dict[str, str]]]:
        async with customer_context(None):
            await wait_for_the_other("anonymous")
            seen = [read_attribution()]
        return [*seen, read_attribution()]

    async def named() -> list[tuple[str | None, dict[str, str]]]:
        with customer_context("globex"):
            await wait_for_the_other("named")
            return [read_attribution()]

    with customer_context("acme", plan="pro"):
        got_anonymous, got_named = await asyncio.gather(anonymous(), named())
        assert read_attribution() == ("acme", {"plan": "pro"})
    assert got_anonymous == [(None, {}), ("acme", {"plan": "pro"})]
    assert got_named == [("globex", {})]


# --- set / reset ----------------------------------------------------------------------


def test_set_and_reset_customer_id_pair() -> None:
    token = set_customer_id("cust-42", plan="pro")
    try:
        assert read_attribution() == ("cust-42", {"plan": "pro"})
    finally:
        reset_customer_id(token)
    assert read_attribution() == (None, {})


def test_set_reset_nested_inside_a_block_restore_the_block() -> None:
    with customer_context("acme", plan="pro"):
        first = set_customer_id("globex")
        second = set_customer_id("globex", region="eu")
        assert read_attribution() == ("globex", {"region": "eu"})
        reset_customer_id(second)
        assert read_attribution() == ("globex", {})
        reset_customer_id(first)
        assert read_attribution() == ("acme", {"plan": "pro"})


def test_set_customer_id_validates_before_attaching() -> None:
    with pytest.raises(ValueError):
        set_customer_id("   ")
    assert read_attribution() == (None, {})


# --- async ----------------------------------------------------------------------------


async def test_plain_with_block_in_a_coroutine_survives_awaits() -> None:
    with customer_context("cust-async", plan="pro"):
        await asyncio.sleep(0)
        assert read_attribution() == ("cust-async", {"plan": "pro"})
    assert read_attribution() == (None, {})


async def test_async_with_is_supported() -> None:
    async with customer_context("cust-async") as block:
        await asyncio.sleep(0)
        assert block.customer_id == "cust-async"
        assert read_attribution() == ("cust-async", {})
    assert read_attribution() == (None, {})


async def test_fifty_concurrent_tasks_each_see_their_own_customer() -> None:
    start = asyncio.Event()

    async def handle(index: int) -> list[tuple[str | None, dict[str, str]]]:
        seen = []
        await start.wait()
        with customer_context(f"cust-{index}", request=index):
            for _ in range(3):
                await asyncio.sleep(random.random() / 1000)
                seen.append(read_attribution())
            with customer_context(f"cust-{index}", step="inner"):
                await asyncio.sleep(0)
                seen.append(read_attribution())
            await asyncio.sleep(0)
            seen.append(read_attribution())
        seen.append(read_attribution())
        return seen

    with customer_context("outer"):
        tasks = asyncio.gather(*(handle(i) for i in range(50)))
        await asyncio.sleep(0)
        start.set()
        results = await tasks
        assert read_attribution() == ("outer", {})

    for index, seen in enumerate(results):
        mine = (f"cust-{index}", {"request": str(index)})
        inner = (f"cust-{index}", {"request": str(index), "step": "inner"})
        # After its own block a task is back to what it inherited when it was created.
        assert seen == [mine, mine, mine, inner, mine, ("outer", {})]


async def test_a_task_created_inside_a_block_keeps_the_customer_after_the_block_ends() -> None:
    release = asyncio.Event()

    async def later() -> tuple[str | None, dict[str, str]]:
        await release.wait()
        return read_attribution()

    with customer_context("cust-bg"):
        task = asyncio.create_task(later())
    release.set()
    assert await task == ("cust-bg", {})


# --- threads --------------------------------------------------------------------------


def test_thread_pool_workers_do_not_see_the_customer_without_copying_the_context() -> None:
    with ThreadPoolExecutor(max_workers=1) as executor, customer_context("cust-42"):
        assert executor.submit(read_attribution).result() == (None, {})


def test_thread_pool_workers_see_the_customer_when_the_context_is_copied() -> None:
    with ThreadPoolExecutor(max_workers=2) as executor:
        with customer_context("cust-42", plan="pro"):
            ctx = contextvars.copy_context()
            future = executor.submit(ctx.run, read_attribution)
        assert future.result() == ("cust-42", {"plan": "pro"})


def test_each_submission_copies_its_own_context() -> None:
    def work(index: int) -> tuple[str | None, dict[str, str]]:
        with customer_context(f"worker-{index}"):
            return read_attribution()

    with ThreadPoolExecutor(max_workers=4) as executor:
        copied, own = [], []
        for index in range(8):
            with customer_context(f"cust-{index}"):
                ctx = contextvars.copy_context()
                copied.append(executor.submit(ctx.run, read_attribution))
            own.append(executor.submit(contextvars.copy_context().run, work, index))
        assert [f.result() for f in copied] == [(f"cust-{i}", {}) for i in range(8)]
        assert [f.result() for f in own] == [(f"worker-{i}", {}) for i in range(8)]
    # The workers' blocks ran in copies: nothing leaked into this thread.
    assert read_attribution() == (None, {})


def test_plain_thread_starts_without_the_customer() -> None:
    seen = []
    with customer_context("cust-42"):
        thread = threading.Thread(target=lambda: seen.append(read_attribution()))
        thread.start()
        thread.join()
    assert seen == [(None, {})]


async def test_asyncio_to_thread_copies_the_context() -> None:
    with customer_context("cust-42"):
        assert await asyncio.to_thread(read_attribution) == ("cust-42", {})


# --- read_attribution -----------------------------------------------------------------


def test_read_attribution_reads_a_given_context_instead_of_the_current_one() -> None:
    with customer_context("cust-current"):
        other = baggage.set_baggage(CMDRDATA_CUSTOMER_ID, "cust-other", Context())
        assert read_attribution(other) == ("cust-other", {})
        assert read_attribution(Context()) == (None, {})
        assert read_attribution() == ("cust-current", {})


def test_read_attribution_returns_a_fresh_dict_each_time() -> None:
    empty_a, empty_b = read_attribution()[1], read_attribution()[1]
    assert empty_a is not empty_b
    empty_a["x"] = "y"
    assert read_attribution() == (None, {})
    with customer_context("cust-42", plan="pro"):
        read_attribution()[1]["plan"] = "changed"
        assert read_attribution() == ("cust-42", {"plan": "pro"})


def test_metadata_without_a_customer_entry_is_ignored() -> None:
    ctx = baggage.set_baggage(CMDRDATA_METADATA_PREFIX + "plan", "pro", Context())
    assert read_attribution(ctx) == (None, {})


def test_hand_written_baggage_is_read_and_trimmed() -> None:
    ctx = baggage.set_baggage(CMDRDATA_CUSTOMER_ID, "  cust-7 ", Context())
    ctx = baggage.set_baggage(CMDRDATA_METADATA_PREFIX + "seats", 5, ctx)
    ctx = baggage.set_baggage("unrelated", "x", ctx)
    assert read_attribution(ctx) == ("cust-7", {"seats": "5"})


def test_invalid_baggage_id_is_ignored_with_one_warning_per_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for bad in ("   ", "x" * 300, "  ", "x" * 301):
        ctx = baggage.set_baggage(CMDRDATA_CUSTOMER_ID, bad, Context())
        assert read_attribution(ctx) == (None, {})
    warnings = [r for r in caplog.records if r.name == customer._logger.name]
    assert len(warnings) == 2
    assert "x" * 20 not in caplog.text


def test_metadata_values_round_trip_as_the_app_reads_them() -> None:
    propagator = W3CBaggagePropagator()
    with customer_context("cust-42", note="a, b; c=d", city="Zürich"):
        carrier: dict[str, str] = {}
        propagator.inject(carrier)
    assert read_attribution(propagator.extract(carrier, Context())) == (
        "cust-42",
        {"note": "a, b; c=d", "city": "Zürich"},
    )


# --- context_without_attribution ------------------------------------------------------


def test_without_attribution_is_the_same_context_when_there_is_no_baggage() -> None:
    current = otel_context.get_current()
    assert context_without_attribution() is current
    empty = Context()
    assert context_without_attribution(empty) is empty


def test_without_attribution_is_the_same_context_when_no_entry_is_ours(app_baggage: None) -> None:
    current = otel_context.get_current()
    assert context_without_attribution() is current


def test_without_attribution_removes_every_cmdrdata_entry_and_keeps_the_rest(
    app_baggage: None,
) -> None:
    with customer_context("cust-42", plan="pro", region="eu"):
        current = otel_context.get_current()
        with_extra = baggage.set_baggage("cmdrdata.sig", "whatever", current)
        stripped = context_without_attribution(with_extra)
        assert dict(baggage.get_all(stripped)) == {"tenant": "t-1", "feature": "beta"}
        assert read_attribution(stripped) == (None, {})
        # Nothing changed in place.
        assert read_attribution() == ("cust-42", {"plan": "pro", "region": "eu"})
        assert baggage.get_baggage("cmdrdata.sig", with_extra) == "whatever"


def test_without_attribution_keeps_non_baggage_context_values() -> None:
    key = otel_context.create_key("app-value")
    ctx = otel_context.set_value(key, 7, baggage.set_baggage(CMDRDATA_CUSTOMER_ID, "c", Context()))
    stripped = context_without_attribution(ctx)
    assert otel_context.get_value(key, stripped) == 7
    assert dict(baggage.get_all(stripped)) == {}


def test_split_attribution_equals_the_two_separate_reads(app_baggage: None) -> None:
    bare = Context()
    assert customer.split_attribution(bare) == (None, {}, bare)
    current = otel_context.get_current()  # app baggage only
    customer_id, metadata, stripped = customer.split_attribution(current)
    assert (customer_id, metadata) == (None, {}) and stripped is current
    with customer_context("cust-42", plan="pro"):
        current = otel_context.get_current()
        customer_id, metadata, stripped = customer.split_attribution(current)
        assert (customer_id, metadata) == read_attribution(current) == ("cust-42", {"plan": "pro"})
        assert dict(baggage.get_all(stripped)) == dict(
            baggage.get_all(context_without_attribution(current))
        )
        assert dict(baggage.get_all(stripped)) == {"tenant": "t-1", "feature": "beta"}


def test_header_injected_from_the_stripped_context_carries_no_customer(
    app_baggage: None,
) -> None:
    propagator = W3CBaggagePropagator()
    with customer_context("cust-42", plan="pro"):
        outbound: dict[str, str] = {}
        propagator.inject(outbound)
        assert "cmdrdata" in outbound["baggage"]

        to_provider: dict[str, str] = {}
        token = otel_context.attach(context_without_attribution())
        try:
            propagator.inject(to_provider)
        finally:
            otel_context.detach(token)
    assert "cmdrdata" not in to_provider["baggage"]
    assert sorted(to_provider["baggage"].split(",")) == ["feature=beta", "tenant=t-1"]


def test_no_header_at_all_when_only_cmdrdata_baggage_was_present() -> None:
    propagator = W3CBaggagePropagator()
    with customer_context("cust-42"):
        carrier: dict[str, str] = {}
        propagator.inject(carrier, context_without_attribution())
    assert carrier == {}


def test_inbound_cmdrdata_entries_are_stripped_even_without_a_customer_entry() -> None:
    inbound = W3CBaggagePropagator().extract(
        {"baggage": "cmdrdata.metadata.plan=pro,cmdrdata.other=1,app=1"}, Context()
    )
    assert dict(baggage.get_all(context_without_attribution(inbound))) == {"app": "1"}
