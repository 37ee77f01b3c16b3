"""Click events and product records from the generator must meet their contracts and behave like
shoppers and a catalogue do.

Records are checked by a validator written here from the contracts (the common rules come from
``test_generator_trades_logs``), independent of the generator's code: valid records must pass
it, and each malformed kind must fail it for the reason its name gives.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka.admin import NewTopic
from hypothesis import given, settings
from hypothesis import strategies as st
from test_generator import FakeAdmin, FakeProducer
from test_generator_trades_logs import (
    COMMON_REASONS,
    MINUTE_MS,
    START_MS,
    Rejected,
    _check_id,
    _check_number,
    _check_ts,
    _decode,
    _present,
)

from faustapp.generator import (
    BAD_KINDS_BY_DATASET,
    CLICK_BAD_KINDS,
    CLICKS_TOPIC,
    DATASETS,
    PRODUCT_BAD_KINDS,
    PRODUCTS_TOPIC,
    VALID,
    GeneratedRecord,
    GeneratorConfig,
    catalogue_product,
    produce,
    records_for,
)
from faustapp.generator import producer as producer_module

EVENTS = {"view", "click", "add_to_cart", "purchase"}
SESSION_GAP_MS = 30 * MINUTE_MS
#: Longest gap within a session the generator promises (a few minutes), with room for pacing.
IN_SESSION_MAX_MS = 6 * MINUTE_MS
TS_KINDS = {"bad_ts_type", "bad_ts_text", "ts_out_of_range", "fractional_ts"}


def make_config(dataset: str, **overrides: Any) -> GeneratorConfig:
    options: dict[str, Any] = {
        "seed": 42,
        "start_ms": START_MS,
        "count": 2000,
        "bad_ratio": 0.0,
        "quiet": True,
    }
    options.update(overrides)
    return GeneratorConfig.for_dataset(dataset, **options)


def records(dataset: str, **overrides: Any) -> list[GeneratedRecord]:
    return list(records_for(make_config(dataset, **overrides)))


# --- an independent validator of the contracts -------------------------------------------


def check_click(payload: bytes | None) -> dict[str, Any]:
    """The click event with ``ts`` in epoch ms, or :class:`Rejected`."""
    if payload is None:
        raise Rejected("empty")
    data = _decode(payload, ("user_id", "ts", "event", "page"))
    _check_id(data["user_id"], "id")
    if _present(data, "amount"):
        _check_number(data["amount"])
    ts = _check_ts(data["ts"])
    if not isinstance(data["event"], str) or data["event"] not in EVENTS:
        raise Rejected("event")
    page = data["page"]
    if not isinstance(page, str) or not 1 <= len(page) <= 2048:
        raise Rejected("page")
    if _present(data, "item_id"):
        _check_id(data["item_id"], "item_id")
    if _present(data, "amount") and data["amount"] < 0:
        raise Rejected("amount")
    if data["event"] == "purchase" and not _present(data, "amount"):
        raise Rejected("purchase_amount")
    return {**data, "ts": ts}


def check_product(value: bytes | None) -> dict[str, Any] | None:
    """The product, ``None`` for a tombstone, or :class:`Rejected`; ``name`` and ``price`` are
    optional."""
    if value is None:
        return None
    data = _decode(value, ("item_id", "category"))
    _check_id(data["item_id"], "id")
    price = _check_number(data["price"]) if _present(data, "price") else None
    if not isinstance(data["category"], str) or not 1 <= len(data["category"]) <= 256:
        raise Rejected("category")
    if _present(data, "name") and not isinstance(data["name"], str):
        raise Rejected("name")
    if price is not None and price < 0:
        raise Rejected("price")
    return data


CHECKERS = {"clicks": check_click, "products": check_product}


def rejection(dataset: str, payload: bytes | None) -> str | None:
    try:
        CHECKERS[dataset](payload)
    except Rejected as reason:
        return str(reason)
    return None


EXPECTED_REASONS = {
    "clicks": {
        **COMMON_REASONS,
        "bad_event": {"event"},
        "empty_page": {"page"},
        "long_page": {"page"},
        "page_not_string": {"page"},
        "bad_item_id": {"item_id"},
        "negative_amount": {"amount"},
        "purchase_without_amount": {"purchase_amount"},
    },
    "products": {
        **{kind: reasons for kind, reasons in COMMON_REASONS.items() if kind not in TS_KINDS},
        "negative_price": {"price"},
        "category_not_string": {"category"},
        "name_not_string": {"name"},
    },
}


def test_the_validator_is_not_a_pushover() -> None:
    """The validator itself must accept the contracts' examples and refuse near misses."""
    click = {
        "user_id": "u-42",
        "ts": 1732435200123,
        "event": "view",
        "page": "/product/sku-17",
        "item_id": "sku-17",
        "amount": None,
    }
    assert check_click(orjson.dumps(click))["ts"] == 1732435200123
    purchase = {**click, "event": "purchase", "page": "/checkout", "amount": 12.5}
    assert check_click(orjson.dumps(purchase))["amount"] == 12.5
    assert check_click(orjson.dumps({**click, "item_id": None, "ts": "2024-11-24T08:00:00Z"}))
    for payload, reason in [
        ({**click, "event": "purchase"}, "purchase_amount"),
        ({key: value for key, value in purchase.items() if key != "amount"}, "purchase_amount"),
        ({**click, "amount": -0.01}, "amount"),
        ({**click, "event": "scroll"}, "event"),
        ({**click, "page": ""}, "page"),
        ({**click, "page": "/" + "x" * 2048}, "page"),
        ({**click, "item_id": "sku/17"}, "item_id"),
        ({**click, "user_id": "u\n1"}, "id"),
        ({**click, "page": None}, "missing"),
    ]:
        assert rejection("clicks", orjson.dumps(payload)) == reason
    assert check_click(orjson.dumps({**click, "page": "/" + "x" * 2047}))
    product = {"item_id": "sku-17", "category": "books", "name": "Atlas", "price": 12.5}
    assert check_product(orjson.dumps(product)) == product
    assert check_product(None) is None
    for payload, reason in [
        ({**product, "price": -1}, "price"),
        ({**product, "category": 3}, "category"),
        ({**product, "name": ["Atlas"]}, "name"),
        ({**product, "price": "12.5"}, "type"),
        ({**product, "item_id": ""}, "id"),
        ({**product, "category": None}, "missing"),
        ({**product, "category": ""}, "category"),
    ]:
        assert rejection("products", orjson.dumps(payload)) == reason
    assert rejection("products", b"") == "empty"
    assert check_product(b'{"item_id": "sku-1", "category": "books", "price": null}')


# --- determinism and shape ---------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["clicks", "products"])
def test_same_seed_gives_identical_records(dataset: str) -> None:
    config = make_config(dataset, bad_ratio=0.1, keys=300, count=3000)
    first = list(records_for(config))
    assert first == list(records_for(config))
    assert len({record.value for record in first}) > 1000


@pytest.mark.parametrize("dataset", ["clicks", "products"])
def test_different_seeds_give_different_records(dataset: str) -> None:
    first = [record.value for record in records(dataset, seed=1, keys=100)]
    second = [record.value for record in records(dataset, seed=2, keys=100)]
    assert first != second


@pytest.mark.parametrize("dataset", ["clicks", "products"])
def test_unseeded_config_resolves_to_a_replayable_one(dataset: str) -> None:
    resolved = GeneratorConfig.for_dataset(dataset, count=50).resolved()
    assert resolved.seed is not None and resolved.start_ms is not None
    assert list(records_for(resolved)) == list(records_for(resolved))


@pytest.mark.parametrize(("dataset", "count"), [("clicks", 1), ("clicks", 999), ("products", 7)])
def test_count_is_respected(dataset: str, count: int) -> None:
    assert len(records(dataset, count=count, bad_ratio=0.3)) == count


@pytest.mark.parametrize("dataset", ["clicks", "products"])
def test_count_zero_is_unbounded(dataset: str) -> None:
    stream = records_for(make_config(dataset, count=0, keys=50))
    assert len(list(itertools.islice(stream, 5000))) == 5000


def test_dataset_defaults() -> None:
    clicks = GeneratorConfig.for_dataset("clicks")
    assert (clicks.topic, clicks.keys, clicks.items, clicks.rate) == ("clicks", 50_000, 1000, 100)
    products = GeneratorConfig.for_dataset("products")
    assert (products.topic, products.keys, products.rate, products.count) == (
        "products",
        1000,
        100,
        2000,
    )
    assert (products.disorder_ms, products.delete_ratio) == (0, 0.01)
    assert (CLICKS_TOPIC, PRODUCTS_TOPIC) == ("clicks", "products")
    assert dict(DATASETS["products"].topic_configs) == {"cleanup.policy": "compact"}
    assert dict(DATASETS["clicks"].topic_configs) == {}
    for dataset in ("clicks", "products"):
        assert set(BAD_KINDS_BY_DATASET[dataset]) == set(EXPECTED_REASONS[dataset])
    assert GeneratorConfig.for_dataset("products", count=5, rate=1).count == 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"items": 0}, "items must be >= 1"),
        ({"delete_ratio": 1.5}, "delete-ratio must be within"),
        ({"keys": 0}, "users must be >= 1"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GeneratorConfig.for_dataset("clicks", **options)


# --- valid click events ------------------------------------------------------------------


def test_valid_clicks_meet_the_contract_and_are_keyed_by_user() -> None:
    generated = records("clicks", count=20_000, keys=400, items=300)
    users, events, pages = set(), Counter(), Counter()
    for record in generated:
        assert record.kind == VALID and record.is_valid
        data = check_click(record.value)
        assert record.key == data["user_id"].encode()
        assert record.event_ts == data["ts"]
        users.add(data["user_id"])
        events[data["event"]] += 1
        page = data["page"]
        pages[page_kind(page)] += 1
        if data.get("item_id") is not None:
            assert 0 <= int(data["item_id"].removeprefix("sku-")) < 300
        if page.startswith("/product/"):
            assert data["event"] != "view" or data["item_id"] == page.removeprefix("/product/")
        if data["event"] in ("click", "add_to_cart", "purchase"):
            assert data.get("item_id") is not None
        if data["event"] == "purchase":
            assert data["amount"] > 0 and page == "/checkout"
    assert users <= {f"u-{index}" for index in range(400)} and len(users) > 300
    assert set(events) == EVENTS
    assert events["view"] > events["click"] > events["add_to_cart"] > events["purchase"] > 50
    assert set(pages) == {"/", "search", "category", "product", "/cart", "/checkout"}


def page_kind(page: str) -> str:
    for prefix, kind in (("/search?q=", "search"), ("/category/", "category")):
        if page.startswith(prefix) and len(page) > len(prefix):
            return kind
    if re.fullmatch(r"/product/sku-\d+", page):
        return "product"
    return page


def test_optional_fields_are_sometimes_null_and_sometimes_absent() -> None:
    clicks = [orjson.loads(record.value) for record in records("clicks", count=5000)]
    for name in ("item_id", "amount"):
        assert any(name in click and click[name] is None for click in clicks)
        assert any(name not in click for click in clicks)


def test_ts_is_mostly_epoch_ms_and_sometimes_iso() -> None:
    stamps = [orjson.loads(record.value)["ts"] for record in records("clicks", count=10_000)]
    iso = [stamp for stamp in stamps if isinstance(stamp, str)]
    assert 50 < len(iso) < 500


# --- event time and disorder -------------------------------------------------------------


@pytest.mark.parametrize("disorder_ms", [0, 1, 3000])
def test_every_valid_ts_lies_in_the_disorder_window(disorder_ms: int) -> None:
    config = make_config("clicks", disorder_ms=disorder_ms, count=5000, bad_ratio=0.02)
    assert config.start_ms is not None
    shifts = []
    for slot, record in enumerate(records_for(config)):
        nominal = config.start_ms + math.floor(slot * config.effective_interval_ms)
        assert record.nominal_ts == nominal
        if record.is_valid:
            assert record.event_ts is not None
            assert check_click(record.value)["ts"] == record.event_ts
            assert nominal - disorder_ms <= record.event_ts <= nominal
            shifts.append(nominal - record.event_ts)
    assert min(shifts) == 0
    assert max(shifts) >= disorder_ms * 0.98


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    count=st.integers(min_value=1, max_value=300),
    users=st.integers(min_value=1, max_value=500),
    disorder_ms=st.integers(min_value=0, max_value=10_000),
    interval_ms=st.one_of(st.none(), st.floats(min_value=0.0, max_value=5000.0)),
)
def test_no_click_is_later_than_disorder_behind_the_stream(
    seed: int, count: int, users: int, disorder_ms: int, interval_ms: float | None
) -> None:
    config = make_config(
        "clicks",
        seed=seed,
        count=count,
        keys=users,
        disorder_ms=disorder_ms,
        interval_ms=interval_ms,
    )
    highest_seen: int | None = None
    for record in records_for(config):
        assert record.event_ts is not None and record.event_ts <= record.nominal_ts
        check_click(record.value)
        if highest_seen is not None:
            assert record.event_ts >= highest_seen - disorder_ms
        highest_seen = max(highest_seen or record.event_ts, record.event_ts)


# --- sessions and journeys ---------------------------------------------------------------


def sessions_of(generated: list[GeneratedRecord]) -> dict[bytes, list[list[dict[str, Any]]]]:
    """Each user's events in send order, cut into sessions where event time jumps > 30 min."""
    by_user: dict[bytes, list[list[dict[str, Any]]]] = defaultdict(list)
    last: dict[bytes, int] = {}
    for record in generated:
        assert record.key is not None
        data = check_click(record.value)
        if record.key not in last or data["ts"] - last[record.key] > SESSION_GAP_MS:
            by_user[record.key].append([])
        by_user[record.key][-1].append(data)
        last[record.key] = data["ts"]
    return by_user


@pytest.mark.parametrize(
    ("users", "interval_ms", "natural"),
    [(1500, 1000.0, True), (5000, 100.0, True), (200, 1000.0, False), (20, 500.0, False)],
)
def test_sessions_are_separated_by_more_than_30_minutes(
    users: int, interval_ms: float, natural: bool
) -> None:
    """Within a session, seconds to minutes; between a user's sessions, over 40 minutes: a
    30-minute session gap finds the generator's sessions, whether users are plenty or scarce."""
    generated = records(
        "clicks", keys=users, interval_ms=interval_ms, count=40_000, disorder_ms=3000, seed=3
    )
    by_user: dict[bytes | None, list[int]] = defaultdict(list)
    for record in generated:
        assert record.event_ts is not None
        by_user[record.key].append(record.event_ts)
    inside, between = [], []
    for stamps in by_user.values():
        stamps.sort()
        for earlier, later in itertools.pairwise(stamps):
            gap = later - earlier
            assert gap <= IN_SESSION_MAX_MS or gap > 40 * MINUTE_MS, gap
            (inside if gap <= IN_SESSION_MAX_MS else between).append(gap)
    assert len(between) > min(100, 2 * users)
    if natural:
        inside.sort()
        median = inside[len(inside) // 2]
        assert 2_000 <= median <= 60_000, median
        assert inside[int(len(inside) * 0.95)] > 30_000


def test_journeys_make_sense() -> None:
    """A click leads to the clicked product's page; a purchase follows the checkout page and an
    add-to-cart of its item in the same session, at that item's catalogue price times 1 to 3."""
    generated = records("clicks", keys=2000, items=500, interval_ms=200.0, count=40_000)
    prices = {f"sku-{index}": catalogue_product(index)["price"] for index in range(500)}
    clicks_followed = clicks = purchases = 0
    for sessions in sessions_of(generated).values():
        for session in sessions:
            carted: set[str] = set()
            seen_checkout = False
            for event, following in itertools.zip_longest(session, session[1:]):
                if event["event"] == "click":
                    clicks += 1
                    if (
                        following is not None
                        and following["event"] == "view"
                        and following["page"] == f"/product/{event['item_id']}"
                    ):
                        clicks_followed += 1
                elif event["event"] == "add_to_cart":
                    carted.add(event["item_id"])
                elif event["page"] == "/checkout":
                    seen_checkout = True
                if event["event"] == "purchase":
                    purchases += 1
                    assert seen_checkout and event["item_id"] in carted
                    price = prices[event["item_id"]]
                    assert any(
                        math.isclose(event["amount"], round(price * quantity, 2))
                        for quantity in (1, 2, 3)
                    )
    assert clicks > 5000 and purchases > 100
    assert clicks_followed > 0.99 * clicks


def test_items_are_skewed_trending_and_co_viewed() -> None:
    """The most popular items get far more views than the tail; some item from the tail trends
    for a while; one session's product views mostly stay within a category."""
    config = make_config("clicks", keys=5000, items=1000, interval_ms=100.0, count=60_000)
    generated = list(records_for(config))
    views: Counter[int] = Counter()
    windows: dict[int, Counter[int]] = defaultdict(Counter)
    for record in generated:
        data = orjson.loads(record.value)
        if data["event"] == "view" and data["page"].startswith("/product/sku-"):
            item = int(data["page"].removeprefix("/product/sku-"))
            views[item] += 1
            windows[(record.nominal_ts - START_MS) // SESSION_GAP_MS][item] += 1
    top = sum(views[item] for item in range(10)) / 10
    tail = sum(views[item] for item in range(500, 1000)) / 500
    assert top > 20 * tail
    assert sum(views[item] for item in range(100)) > 0.5 * sum(views.values())
    trending = {
        item for window in windows.values() for item, _ in window.most_common(5) if item >= 50
    }
    assert trending
    categories = {
        catalogue_product(index)["item_id"]: catalogue_product(index)["category"]
        for index in range(1000)
    }
    same = pairs = 0
    for sessions in sessions_of(generated).values():
        for session in sessions:
            viewed = [
                categories[event["item_id"]]
                for event in session
                if event["event"] == "view" and event.get("item_id") is not None
            ]
            for first, second in itertools.pairwise(viewed):
                pairs += 1
                same += first == second
    assert pairs > 1000 and same > 0.5 * pairs


# --- products ----------------------------------------------------------------------------


def test_products_start_with_the_whole_catalogue_whatever_the_seed() -> None:
    first = records("products", keys=300, count=1000, bad_ratio=0.2, delete_ratio=0.2, seed=1)
    second = records("products", keys=300, count=300, seed=2)
    assert first[:300] == second
    for index, record in enumerate(second):
        assert record.key == f"sku-{index}".encode() and record.kind == VALID
        assert record.event_ts is None
        product = check_product(record.value)
        assert product == catalogue_product(index)
        assert product is not None and product["item_id"] == f"sku-{index}"
    assert len({orjson.loads(record.value)["category"] for record in second}) == 12


def test_products_update_prices_and_categories_and_delete() -> None:
    generated = records("products", keys=200, count=6000, delete_ratio=0.1)
    latest: dict[bytes, dict[str, Any] | None] = {}
    price_changes = category_changes = deletions = relisted = 0
    for record in generated:
        assert record.kind == VALID and record.key is not None
        product = check_product(record.value)
        before = latest.get(record.key, "unseen")
        if product is None:
            assert before is not None, "only a listed item is deleted"
            deletions += 1
        elif before is None:
            relisted += 1
        elif isinstance(before, dict):
            assert product["item_id"] == before["item_id"] and product["name"] == before["name"]
            price_changes += product["price"] != before["price"]
            category_changes += product["category"] != before["category"]
        if product is not None:
            assert record.key == product["item_id"].encode()
            assert set(product) == {"item_id", "category", "name", "price"}
        latest[record.key] = product
    updates = len(generated) - 200
    assert 0.07 * updates < deletions < 0.13 * updates
    assert relisted > 100 and price_changes > 2000 and 100 < category_changes < 1000
    assert not any(record.value is None for record in records("products", delete_ratio=0.0))


def test_every_malformed_product_is_followed_by_its_item_again() -> None:
    generated = records("products", keys=100, count=3000, bad_ratio=0.3, delete_ratio=0.1)
    assert all(record.is_valid for record in generated[:100])
    assert generated[-1].is_valid
    compacted: dict[bytes | None, bytes | None] = {}
    for record, following in itertools.pairwise(generated):
        if not record.is_valid:
            assert following.is_valid and following.key == record.key
        compacted[record.key] = record.value
    compacted[generated[-1].key] = generated[-1].value
    assert len(compacted) == 100
    for value in compacted.values():
        check_product(value)
    assert records("products", keys=10, count=11, bad_ratio=1.0)[-1].is_valid


# --- malformed records -------------------------------------------------------------------


@pytest.mark.parametrize(("dataset", "count"), [("clicks", 6000), ("products", 12_000)])
def test_bad_ratio_one_produces_every_kind_each_for_its_reason(dataset: str, count: int) -> None:
    generated = records(dataset, bad_ratio=1.0, count=count, keys=100)
    if dataset == "products":
        generated = [record for record in generated[100:] if not record.is_valid]
        assert len(generated) > (count - 100) // 2 - 10
    kinds = Counter(record.kind for record in generated)
    assert set(kinds) == set(EXPECTED_REASONS[dataset])
    for record in generated:
        assert not record.is_valid and record.event_ts is None
        reason = rejection(dataset, record.value)
        assert reason in EXPECTED_REASONS[dataset][record.kind], (record.kind, reason, record)
        assert record.key is not None
        _check_id(record.key.decode(), "id")


@pytest.mark.parametrize("dataset", ["clicks", "products"])
def test_bad_ratio_is_roughly_honoured_and_the_validator_agrees(dataset: str) -> None:
    generated = records(dataset, bad_ratio=0.2, count=20_000, keys=500)
    bad = [record for record in generated if not record.is_valid]
    share = 0.2 if dataset == "clicks" else 0.2 / 1.2  # products: each bad one is repaired
    assert share * 0.9 < len(bad) / len(generated) < share * 1.1
    assert {record.kind for record in bad} == set(BAD_KINDS_BY_DATASET[dataset])
    for record in generated:
        assert (rejection(dataset, record.value) is None) == record.is_valid


def test_bad_kinds_look_like_their_names() -> None:
    examples: dict[str, list[bytes]] = defaultdict(list)
    for record in records("clicks", bad_ratio=1.0, count=6000):
        assert record.value is not None
        examples[record.kind].append(record.value)
    for value in examples["long_page"]:
        assert len(orjson.loads(value)["page"]) > 2048
    for value in examples["purchase_without_amount"]:
        data = orjson.loads(value)
        assert data["event"] == "purchase" and data.get("amount") is None
    for value in examples["negative_amount"]:
        assert orjson.loads(value)["amount"] < 0
    assert set(CLICK_BAD_KINDS) - set(PRODUCT_BAD_KINDS) >= TS_KINDS | {"bad_event"}
    assert not TS_KINDS & set(PRODUCT_BAD_KINDS)


# --- the producer loop, with the Kafka clients faked -------------------------------------


class ConfigRecordingAdmin(FakeAdmin):
    topic_configs: dict[str, dict[str, str]] = {}

    async def create_topics(self, topics: list[NewTopic]) -> Any:
        for topic in topics:
            ConfigRecordingAdmin.topic_configs[topic.name] = dict(topic.topic_configs)
        return await super().create_topics(topics)


@pytest.fixture
def fake_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeProducer]]:
    FakeAdmin.existing, FakeAdmin.created, FakeAdmin.create_error = set(), [], 0
    ConfigRecordingAdmin.topic_configs = {}
    FakeProducer.instances, FakeProducer.fail_every = [], 0
    monkeypatch.setattr(producer_module, "AIOKafkaAdminClient", ConfigRecordingAdmin)
    monkeypatch.setattr(producer_module, "AIOKafkaProducer", FakeProducer)
    yield FakeProducer


def test_products_go_to_a_compacted_topic_with_tombstones(
    fake_clients: type[FakeProducer],
) -> None:
    config = make_config("products", rate=0, keys=50, count=1000, delete_ratio=0.2, partitions=3)
    report = asyncio.run(produce(config, "broker:9092"))
    (producer,) = fake_clients.instances
    expected = list(records_for(config))
    assert [(topic, value, key) for topic, value, key, _ in producer.sent] == [
        ("products", record.value, record.key) for record in expected
    ]
    assert [timestamp for *_, timestamp in producer.sent] == [
        record.nominal_ts for record in expected
    ]
    assert any(value is None for _, value, _, _ in producer.sent)
    assert FakeAdmin.created == [("products", 3, 1)]
    assert ConfigRecordingAdmin.topic_configs == {"products": {"cleanup.policy": "compact"}}
    assert (report.sent, report.acked, report.bad) == (1000, 1000, 0)


def test_clicks_go_to_a_plain_topic_keyed_by_user(fake_clients: type[FakeProducer]) -> None:
    config = make_config("clicks", rate=0, keys=50, count=1500, bad_ratio=0.05)
    report = asyncio.run(produce(config, "broker:9092"))
    (producer,) = fake_clients.instances
    expected = list(records_for(config))
    assert [(value, key) for _, value, key, _ in producer.sent] == [
        (record.value, record.key) for record in expected
    ]
    assert ConfigRecordingAdmin.topic_configs == {"clicks": {}}
    bad = sum(1 for record in expected if not record.is_valid)
    assert (report.sent, report.bad) == (1500, bad) and bad > 0


@pytest.mark.parametrize(("items", "users"), [(1, 1), (2, 3), (13, 1000)])
def test_tiny_catalogues_and_few_users_still_meet_the_contract(items: int, users: int) -> None:
    generated = records("clicks", items=items, keys=users, count=3000, bad_ratio=0.0)
    skus = {f"sku-{index}" for index in range(items)}
    for record in generated:
        data = check_click(record.value)
        assert data.get("item_id") is None or data["item_id"] in skus
