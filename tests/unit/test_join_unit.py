"""Stream-table joins: the enricher the runtime builds for a joined source, against a plain
dictionary standing in for the reference table, and the checks ``Source.join`` makes when a
join is declared."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faustapp.agents.clicks import (
    UNKNOWN_CATEGORY,
    Click,
    Product,
    category_sales,
    clicks_with_product,
    is_purchase,
)
from faustapp.api import Catalog, Count, Sum, tumbling
from faustapp.runtime import _enricher
from faustapp.schema import Schema

PROPERTY = settings(max_examples=200, deadline=None)
ITEMS = ("sku-1", "sku-2", "sku-3", "книга-7")


class FakeTable:
    """Anything with ``get(key)`` serves as the reference table."""

    def __init__(self, rows: dict[str, Any]) -> None:
        self.rows = rows
        self.asked: list[Any] = []

    def get(self, key: Any) -> Any:
        self.asked.append(key)
        return self.rows.get(key)


@st.composite
def clicks_st(draw: st.DrawFn) -> Click:
    kind = draw(st.sampled_from(["view", "click", "add_to_cart", "purchase"]))
    amount = draw(st.floats(0, 1e4, allow_nan=False))
    return Click(
        user_id=draw(st.sampled_from(["u-1", "u-2", "ü"])),
        ts=draw(st.integers(0, 2**41)),
        event=kind,
        page=draw(st.text(min_size=1, max_size=20)),
        item_id=draw(st.one_of(st.none(), st.sampled_from(ITEMS))),
        amount=amount if kind == "purchase" or draw(st.booleans()) else None,
    )


products_st = st.dictionaries(
    st.sampled_from(ITEMS),
    st.builds(
        Product,
        item_id=st.just("x"),
        category=st.sampled_from(["books", "toys", "garden"]),
        name=st.text(max_size=10),
        price=st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
    ),
)

CLICK_FIELDS = Click.__struct_fields__


@PROPERTY
@given(clicks_st(), products_st)
def test_the_declared_join_copies_the_category_or_says_unknown(
    click: Click, rows: dict[str, Product]
) -> None:
    enriched_type = clicks_with_product.schema.record_type
    table = FakeTable(rows)
    before = msgspec.structs.asdict(click)
    enriched = _enricher(clicks_with_product.join_spec, table, enriched_type)(click)
    assert type(enriched) is enriched_type
    assert isinstance(enriched, Click)
    for name in CLICK_FIELDS:
        assert getattr(enriched, name) == getattr(click, name), name
    row = rows.get(click.item_id) if click.item_id is not None else None
    assert enriched.category == (UNKNOWN_CATEGORY if row is None else row.category)
    assert table.asked == [click.item_id]
    assert msgspec.structs.asdict(click) == before  # the event itself is left alone
    # What the regrouped half of category-sales reads back from its repartition topic.
    regrouped = category_sales.schema.regrouped("category")
    assert regrouped.decode(msgspec.json.encode(enriched)) == enriched
    assert regrouped.key_of(enriched) == enriched.category


def several_fields_join(missing: dict[str, Any] | None) -> Any:
    catalog = Catalog()
    clicks = catalog.source("clicks", topic="clicks", schema=Schema(Click, key="user_id"))
    products = catalog.reference(
        "products", topic="products", schema=Schema(Product, key="item_id", ts=None)
    )
    return clicks.join(
        products,
        on="item_id",
        fields={"category": "category", "product_name": "name", "list_price": "price"},
        missing=missing,
    )


@PROPERTY
@given(
    clicks_st(),
    products_st,
    st.sampled_from([None, {}, {"category": "none-yet"}, {"category": "?", "list_price": -1.0}]),
)
def test_every_field_is_copied_or_missing_and_the_original_fields_are_kept(
    click: Click, rows: dict[str, Product], missing: dict[str, Any] | None
) -> None:
    """A row that is there gives its fields as they are (an absent price stays None); no row,
    or no key to look up, gives ``missing`` (None for a field it does not name)."""
    joined = several_fields_join(missing)
    enriched = _enricher(joined.join_spec, FakeTable(rows), joined.schema.record_type)(click)
    assert msgspec.structs.asdict(enriched) == {
        **msgspec.structs.asdict(click),
        **expected_fields(rows.get(click.item_id), missing or {}),
    }


def expected_fields(row: Product | None, missing: dict[str, Any]) -> dict[str, Any]:
    if row is None:
        return {name: missing.get(name) for name in ("category", "product_name", "list_price")}
    return {"category": row.category, "product_name": row.name, "list_price": row.price}


def test_the_row_is_looked_up_when_each_event_is_processed() -> None:
    joined = several_fields_join({"category": "later"})
    table = FakeTable({})
    enrich = _enricher(joined.join_spec, table, joined.schema.record_type)
    click = Click("u-1", 5, "purchase", "/buy", "sku-1", 3.0)
    assert enrich(click).category == "later"
    table.rows["sku-1"] = Product("sku-1", "books", "A book", 3.0)
    assert (enrich(click).category, enrich(click).product_name) == ("books", "A book")
    del table.rows["sku-1"]  # a tombstone
    assert enrich(click).category == "later"


def test_a_click_without_an_item_gets_the_missing_values() -> None:
    enrich = _enricher(
        clicks_with_product.join_spec,
        FakeTable({"sku-1": Product("sku-1", "books")}),
        clicks_with_product.schema.record_type,
    )
    assert enrich(Click("u-1", 5, "view", "/", None)).category == UNKNOWN_CATEGORY


# --------------------------------------------------------------------------------------------
# Declaration


@pytest.fixture
def declared() -> tuple[Catalog, Any, Any]:
    catalog = Catalog()
    clicks = catalog.source("clicks", topic="clicks", schema=Schema(Click, key="user_id"))
    products = catalog.reference(
        "products", topic="products", schema=Schema(Product, key="item_id", ts=None)
    )
    return catalog, clicks, products


def test_joining_on_a_field_the_events_lack_fails_at_declaration(declared: Any) -> None:
    _, clicks, products = declared
    with pytest.raises(ValueError, match="cannot join on 'sku'"):
        clicks.join(products, on="sku", fields={"category": "category"})


def test_copying_a_field_the_reference_lacks_fails_at_declaration(declared: Any) -> None:
    _, clicks, products = declared
    with pytest.raises(ValueError, match="products has no field 'colour'"):
        clicks.join(products, on="item_id", fields={"colour": "colour"})


def test_a_new_field_named_like_an_event_field_fails_at_declaration(declared: Any) -> None:
    _, clicks, products = declared
    with pytest.raises(ValueError, match="'page' is already a field of Click"):
        clicks.join(products, on="item_id", fields={"page": "name"})
    joined = clicks.join(products, on="item_id", fields={"category": "category"})
    with pytest.raises(ValueError, match="'category' is already a field"):
        joined.join(products, on="item_id", fields={"category": "name"})


def test_a_joined_source_declares_windows_on_the_new_fields(declared: Any) -> None:
    catalog, clicks, products = declared
    joined = clicks.join(products, on="item_id", fields={"category": "category"})
    assert joined.root is clicks and joined.topic == clicks.topic
    decl = joined.window(
        "sales", tumbling(60_000), by="category", where=is_purchase, n=Count(), r=Sum("amount")
    )
    assert catalog.names() == ["sales"]
    assert decl.key == "category"
    with pytest.raises(ValueError, match="cannot group by 'colour'"):
        joined.window("other", tumbling(60_000), by="colour", n=Count())


@pytest.mark.parametrize("missing", [{"categry": "unknown"}, {"page": "unknown"}])
def test_missing_values_for_fields_the_join_does_not_add_fail_at_declaration(
    declared: Any, missing: dict[str, Any]
) -> None:
    _, clicks, products = declared
    with pytest.raises(ValueError, match="not among the fields the join adds"):
        clicks.join(products, on="item_id", fields={"category": "category"}, missing=missing)
