"""The product catalogue: the items clicks are about, and the records of the ``products`` topic.

Every item ``sku-{i}`` has a category, a name and a base price that depend on ``i`` alone, not on
the run's seed, so the clicks generator (which draws its items from the same ids) and the products
generator agree on what ``sku-17`` is. The ``products`` topic is a compacted reference topic keyed
by item id: the generator sends the whole catalogue once, then updates (a new price, now and then a
new category) and, with ``--delete-ratio``, tombstones (a null value deletes the item; a later
update lists it again).

A product is ``{"item_id", "category", "name", "price"}``: ``item_id`` an id, ``category`` a
non-empty string; ``name`` (a string) and ``price`` (a number >= 0) are optional for consumers,
and every valid record sent here carries both.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from faustapp.generator.config import GeneratorConfig
from faustapp.generator.records import VALID, GeneratedRecord, draw_bad_kind, slot_times
from faustapp.generator.schema import Record, Schema, with_value


@dataclass(frozen=True)
class Category:
    """A shelf of the shop: its name, typical price and the words of its product names."""

    name: str
    median_price: float
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("books", 14.0, ("Paperback", "Hardcover", "Illustrated", "Pocket", "Collected"),
             ("Novel", "Cookbook", "Atlas", "Biography", "Poetry", "Field Guide")),
    Category("electronics", 120.0, ("Wireless", "Compact", "Smart", "Portable", "Studio"),
             ("Headphones", "Speaker", "Charger", "Keyboard", "Monitor", "Camera")),
    Category("home", 45.0, ("Linen", "Walnut", "Ceramic", "Woven", "Minimal"),
             ("Lamp", "Cushion", "Rug", "Vase", "Shelf", "Throw")),
    Category("kitchen", 30.0, ("Cast-Iron", "Stainless", "Nonstick", "Bamboo", "Enamel"),
             ("Skillet", "Kettle", "Knife", "Cutting Board", "Teapot", "Mixing Bowl")),
    Category("toys", 25.0, ("Wooden", "Plush", "Magnetic", "Remote-Control", "Glow"),
             ("Train Set", "Puzzle", "Robot", "Bear", "Building Blocks")),
    Category("sports", 40.0, ("Trail", "Carbon", "Insulated", "Lightweight", "Pro"),
             ("Running Shoes", "Yoga Mat", "Water Bottle", "Racket", "Backpack")),
    Category("beauty", 22.0, ("Organic", "Hydrating", "Matte", "Travel", "Fragrance-Free"),
             ("Face Cream", "Lipstick", "Shampoo", "Serum", "Sunscreen")),
    Category("garden", 35.0, ("Solar", "Galvanised", "Heirloom", "Folding", "Weatherproof"),
             ("Planter", "Hose", "Seed Kit", "Pruner", "Bench")),
    Category("fashion", 50.0, ("Merino", "Denim", "Leather", "Oversized", "Cotton"),
             ("Jacket", "Scarf", "Sneakers", "Belt", "Sweater", "Tote")),
    Category("grocery", 8.0, ("Single-Origin", "Organic", "Smoked", "Wildflower", "Stone-Ground"),
             ("Coffee", "Olive Oil", "Honey", "Tea", "Granola", "Pasta")),
    Category("music", 18.0, ("Remastered", "Live", "Deluxe", "Vinyl", "Acoustic"),
             ("Album", "Box Set", "EP", "Soundtrack")),
    Category("games", 45.0, ("Cooperative", "Strategy", "Party", "Retro", "Family"),
             ("Board Game", "Card Game", "Video Game", "Expansion")),
)  # fmt: skip

#: Seeds each item's name and price, so the catalogue is the same in every run.
_CATALOGUE_SEED = 0x5EED_C0DE
#: Share of updates after the catalogue that move an item to another category.
CATEGORY_CHANGE_SHARE = 0.1
#: Price factors of an update, relative to the item's base price (sales, rises, back to normal).
PRICE_FACTORS = (0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.0, 1.05, 1.1, 1.2)


def sku(index: int) -> str:
    """The id of item ``index``: ``sku-17``."""
    return f"sku-{index}"


def category_index(index: int) -> int:
    """The category of item ``index`` (into :data:`CATEGORIES`), by Fibonacci hashing."""
    return ((index * 2654435761) & 0xFFFFFFFF) * len(CATEGORIES) >> 32


def catalogue_product(index: int) -> Record:
    """The catalogue record of item ``index``: the same in every run, whatever the seed."""
    category = CATEGORIES[category_index(index)]
    rng = random.Random(_CATALOGUE_SEED + index)
    name = f"{rng.choice(category.adjectives)} {rng.choice(category.nouns)}"
    price = min(rng.lognormvariate(0.0, 0.6), 20.0) * category.median_price
    price = round(price, 2) if price < 10 else round(price) - 0.01
    return {"item_id": sku(index), "category": category.name, "name": name, "price": price}


def _negative_price(schema: Schema, rng: random.Random, record: Record) -> bytes:
    price = record["price"]
    assert isinstance(price, float)
    return with_value(record, "price", rng.choice((-0.01, -1, -price)))


def _category_not_string(schema: Schema, rng: random.Random, record: Record) -> bytes:
    category = record["category"]
    return with_value(record, "category", rng.choice((7, 2.5, True, [category], {"name": 1})))


def _name_not_string(schema: Schema, rng: random.Random, record: Record) -> bytes:
    name = record["name"]
    return with_value(record, "name", rng.choice((42, 0.5, False, [name], {"text": name})))


PRODUCT_SCHEMA = Schema(
    id_field="item_id",
    required=("item_id", "category"),
    numbers=("price",),
    specific={
        "negative_price": _negative_price,
        "category_not_string": _category_not_string,
        "name_not_string": _name_not_string,
    },
    has_ts=False,
)
#: Every way a generated product record can be malformed; each must be rejected by a consumer.
PRODUCT_BAD_KINDS: tuple[str, ...] = PRODUCT_SCHEMA.bad_kinds


def _updated(rng: random.Random, index: int, current: Record | None) -> Record:
    """Item ``index`` after an update: a new price, sometimes a new category; listed again if
    it was deleted."""
    product = dict(current) if current is not None else catalogue_product(index)
    if current is not None and rng.random() < CATEGORY_CHANGE_SHARE:
        product["category"] = rng.choice(CATEGORIES).name
    else:
        base = catalogue_product(index)["price"]
        assert isinstance(base, float)
        product["price"] = max(round(base * rng.choice(PRICE_FACTORS), 2), 0.01)
    return product


def product_records(config: GeneratorConfig) -> Iterator[GeneratedRecord]:
    """Yield the product records of one run; the same resolved config always yields the same.

    The first ``keys`` records are the catalogue, ``sku-0`` .. ``sku-{keys-1}`` in order, all
    valid. Every later record is about an item drawn uniformly: a tombstone (value ``None``) with
    probability ``delete_ratio`` when the item is listed, else an update (the item's full record
    with a new price or, one time in ten, a new category; a deleted item is listed again).

    After the catalogue, a record is malformed with probability ``bad_ratio`` (kind picked
    uniformly from :data:`PRODUCT_BAD_KINDS`), keyed by its item; the next record then repeats
    that item's current value (its record or a tombstone), so a compacted topic keeps a valid
    latest value for every item. The last record of a bounded run is never malformed.

    Products carry no event time (``event_ts`` is ``None``): a record's Kafka timestamp is its
    slot's nominal time, and ``disorder_ms`` has no effect.
    """
    config = config.resolved()
    rng = random.Random(config.seed)
    items = config.keys
    payloads = PRODUCT_SCHEMA.bad_payloads
    kinds = tuple(payloads)
    current: list[Record | None] = [None] * items
    repair: int | None = None
    last_slot = config.count - 1
    for slot, nominal_ts in enumerate(slot_times(config)):
        if slot < items:
            current[slot] = catalogue_product(slot)
            index: int = slot
        elif repair is not None:
            index, repair = repair, None
        else:
            index = rng.randrange(items)
            kind = None if slot == last_slot else draw_bad_kind(rng, config.bad_ratio, kinds)
            if kind is not None:
                record = current[index] or catalogue_product(index)
                payload = payloads[kind](PRODUCT_SCHEMA, rng, dict(record))
                repair = index
                yield GeneratedRecord(sku(index).encode(), payload, None, kind, nominal_ts)
                continue
            if current[index] is not None and rng.random() < config.delete_ratio:
                current[index] = None
            else:
                current[index] = _updated(rng, index, current[index])
        product = current[index]
        value = orjson.dumps(product) if product is not None else None
        yield GeneratedRecord(sku(index).encode(), value, None, VALID, nominal_ts)
