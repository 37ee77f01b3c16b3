"""The ``faustapp generate`` command line: its datasets, options and their checks."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from faustapp.generator import (
    CLICKS,
    DATASETS,
    LOGS,
    PRODUCTS,
    SENSORS,
    TRADES,
    Dataset,
    GeneratorConfig,
)

#: Per dataset: help line, description, the dataset's own name for ``--keys`` and its help.
_SUBCOMMANDS: dict[str, tuple[str, str, str, str]] = {
    SENSORS: (
        "IoT sensor readings to the sensor-readings topic",
        "Produce IoT sensor readings keyed by sensor id, with bounded event-time disorder "
        "(each ts lies in [nominal - disorder-ms, nominal]) and a share of malformed "
        "records. The broker comes from FAUSTAPP_BROKER.",
        "--sensors",
        "distinct sensor ids",
    ),
    TRADES: (
        "trades to the trades topic",
        "Produce trades keyed by symbol: per-symbol prices follow a random walk with "
        "occasional jumps of 4-10%, quantities are whole shares or coin fractions, side is "
        "buy, sell or absent. Event-time disorder is bounded (each ts lies in "
        "[nominal - disorder-ms, nominal]) and a share of records is malformed. The broker "
        "comes from FAUSTAPP_BROKER.",
        "--symbols",
        "distinct symbols: ACME, GLOBEX, BTC-USD, ..., then SYM20, SYM21, ...",
    ),
    LOGS: (
        "application log lines to the app-logs topic",
        "Produce application log lines keyed by service: mostly healthy requests, with "
        "per-service incidents (bursts of errors and slow requests). Event-time disorder is "
        "bounded (each ts lies in [nominal - disorder-ms, nominal]) and a share of records is "
        "malformed. The broker comes from FAUSTAPP_BROKER.",
        "--services",
        "distinct services: gateway, search, catalog, ..., then svc-12, svc-13, ...",
    ),
    CLICKS: (
        "shop click events to the clicks topic",
        "Produce shop click events keyed by user id: per user, sessions of views, clicks, "
        "add-to-carts and purchases (seconds to minutes apart within a session, more than 40 "
        "minutes of event time between a user's sessions) over the items sku-0, sku-1, ... of "
        "'generate products', drawn from a skewed popularity. Sessions keep that pace while "
        "there are about 500 users per event per second. Event-time disorder is bounded (each "
        "ts lies in [nominal - disorder-ms, nominal]) and a share of records is malformed. The "
        "broker comes from FAUSTAPP_BROKER.",
        "--users",
        "distinct users: u-0, u-1, ...",
    ),
    PRODUCTS: (
        "the product catalogue to the compacted products topic",
        "Produce the product catalogue keyed by item id to a compacted topic (created with "
        "cleanup.policy=compact): every item sku-0, sku-1, ... once, then updates (a new price, "
        "sometimes a new category) and tombstones (null values that delete an item, which a "
        "later update lists again). Malformed records come after the catalogue, each followed "
        "by its item's valid value again. Products carry no event time: records are timed by "
        "the slot clock and --disorder-ms has no effect. The broker comes from FAUSTAPP_BROKER.",
        "--items",
        "catalogue items sku-0 .. sku-{N-1}, the first N records",
    ),
}
#: Options of one dataset only, passed to the generator when the dataset's parser has them.
DATASET_OPTIONS = ("items", "delete_ratio")


def build_generate_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """Build the ``generate`` parser; each dataset's sub-parser is returned for error reporting."""
    parser = argparse.ArgumentParser(
        prog="faustapp generate",
        description="Produce synthetic data to Kafka for demos, tests and benchmarks.",
    )
    subcommands = parser.add_subparsers(
        dest="dataset", required=True, metavar="{" + ",".join(_SUBCOMMANDS) + "}"
    )
    dataset_parsers = {}
    for dataset, (help_line, description, keys_flag, keys_help) in _SUBCOMMANDS.items():
        dataset_parser = subcommands.add_parser(dataset, help=help_line, description=description)
        _add_generator_options(dataset_parser, DATASETS[dataset], keys_flag, keys_help)
        _add_dataset_options(dataset_parser, dataset)
        dataset_parsers[dataset] = dataset_parser
    return parser, dataset_parsers


def _add_dataset_options(parser: argparse.ArgumentParser, dataset: str) -> None:
    defaults = GeneratorConfig.for_dataset(dataset)
    if dataset == CLICKS:
        parser.add_argument(
            "--items",
            type=_at_least(1),
            default=defaults.items,
            help="items the clicks are about, sku-0 .. sku-{N-1}: the ids of 'generate "
            "products --items N' (default: %(default)s)",
        )
    elif dataset == PRODUCTS:
        parser.add_argument(
            "--delete-ratio",
            type=_ratio,
            default=defaults.delete_ratio,
            help="probability in [0, 1] that a record after the catalogue is a tombstone "
            "(default: %(default)g)",
        )


def _add_generator_options(
    parser: argparse.ArgumentParser, info: Dataset, keys_flag: str, keys_help: str
) -> None:
    defaults = GeneratorConfig.for_dataset(info.name)
    records, record = info.record_noun, info.record_singular
    timed = info.name != PRODUCTS
    moment = "event time" if timed else "Kafka timestamp"
    disorder_help = (
        f"maximum shift of a {record} back in event time, never forward (default: %(default)s)"
        if timed
        else f"no effect: {records} carry no event time (default: %(default)s)"
    )
    parser.add_argument(
        "--topic",
        default=None,
        help=f"topic to produce to (default: FAUSTAPP_TOPIC_PREFIX + {defaults.topic})",
    )
    parser.add_argument(
        "--rate",
        type=_non_negative_float,
        default=defaults.rate,
        help=f"{records} per second; 0 sends as fast as possible (default: %(default)g)",
    )
    parser.add_argument(
        "--count",
        type=_at_least(0),
        default=defaults.count,
        help=f"{records} to produce; 0 runs until interrupted (default: %(default)s)",
    )
    parser.add_argument(
        keys_flag,
        "--keys",
        dest="keys",
        metavar=info.key_noun.upper(),
        type=_at_least(1),
        default=defaults.keys,
        help=f"{keys_help} (default: %(default)s)",
    )
    parser.add_argument(
        "--disorder-ms",
        type=_at_least(0),
        default=defaults.disorder_ms,
        help=disorder_help,
    )
    parser.add_argument(
        "--bad-ratio",
        type=_ratio,
        default=defaults.bad_ratio,
        help="probability in [0, 1] that a record is malformed (default: %(default)g)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for a reproducible run (default: random)"
    )
    parser.add_argument(
        "--start-ms",
        type=_at_least(0),
        default=None,
        help=f"{moment} (epoch ms) of the first {record} (default: now)",
    )
    parser.add_argument(
        "--interval-ms",
        type=_non_negative_float,
        default=None,
        help=f"{moment} step between consecutive {records} (default: 1000/rate, or 1 if "
        f"--rate 0), so {moment} tracks the wall clock",
    )
    parser.add_argument(
        "--partitions",
        type=_at_least(1),
        default=None,
        help="partitions if the topic must be created (default: FAUSTAPP_PARTITIONS)",
    )
    parser.add_argument(
        "--replication-factor",
        type=_at_least(1),
        default=None,
        help="replication factor if the topic must be created (default: "
        "FAUSTAPP_REPLICATION_FACTOR, 1 when unset)",
    )
    parser.add_argument(
        "--min-insync-replicas",
        type=_at_least(1),
        default=None,
        help="min.insync.replicas if the topic must be created, at most the replication factor "
        "(default: FAUSTAPP_MIN_INSYNC_REPLICAS, else the broker's default)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress or summary output")


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value
