"""The ``faustapp`` command: our own ``generate`` and ``tail`` subcommands, everything else goes
to Faust."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
from collections.abc import Callable, Iterator, Sequence

from aiokafka.errors import KafkaError

from faustapp import kafka_client
from faustapp.generator import (
    CLICKS,
    DATASETS,
    LOGS,
    PRODUCTS,
    SENSORS,
    TRADES,
    Dataset,
    GeneratorConfig,
    produce,
)
from faustapp.settings import Settings, SettingsError
from faustapp.tail import TopicMissing, build_parser, tail

#: Exit status for a run stopped by Ctrl-C or SIGTERM, as shells report it for SIGINT.
EXIT_INTERRUPTED = 130
EXIT_USAGE = 2
EXIT_FAILED = 1


def main() -> None:
    """Console-script entry point, so one command covers the generator, tail and the worker."""
    argv = sys.argv[1:]
    if argv[:1] == ["generate"]:
        code = run_generate(argv[1:])
    elif argv[:1] == ["tail"]:
        code = run_tail(argv[1:])
    else:
        code = run_faust()
    if code:
        sys.exit(code)


def run_faust() -> int:
    """Defer to Faust's own CLI (worker, agents, tables, ...) with the app imported lazily."""
    try:
        from faustapp.app import app

        app.main()
    except SettingsError as error:
        return _usage_error(error)
    return 0


def run_generate(argv: Sequence[str]) -> int:
    """Parse ``generate ...`` options and run the chosen generator; returns the exit status."""
    parser, dataset_parsers = build_generate_parser()
    options = parser.parse_args(list(argv))
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        return _usage_error(error)
    try:
        config = GeneratorConfig(
            topic=options.topic or settings.topic(DATASETS[options.dataset].topic),
            rate=options.rate,
            count=options.count,
            keys=options.keys,
            disorder_ms=options.disorder_ms,
            bad_ratio=options.bad_ratio,
            seed=options.seed,
            start_ms=options.start_ms,
            interval_ms=options.interval_ms,
            quiet=options.quiet,
            partitions=options.partitions if options.partitions else settings.partitions,
            replication_factor=options.replication_factor or settings.replication_factor,
            min_insync_replicas=(
                options.min_insync_replicas
                if options.min_insync_replicas is not None
                else settings.min_insync_replicas
            ),
            dataset=options.dataset,
            **{name: getattr(options, name) for name in _DATASET_OPTIONS if name in options},
        )
    except ValueError as error:
        dataset_parsers[options.dataset].error(str(error))
    try:
        return asyncio.run(_produce_until_signalled(config, settings))
    except SettingsError as error:
        return _usage_error(error)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def run_tail(argv: Sequence[str]) -> int:
    """Parse ``tail ...`` options and print the topic's records; returns the exit status."""
    options = build_parser().parse_args(list(argv))
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        return _usage_error(error)
    try:
        return asyncio.run(_tail_until_signalled(options, settings))
    except SettingsError as error:
        return _usage_error(error)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


async def _tail_until_signalled(options: argparse.Namespace, settings: Settings) -> int:
    bootstrap = settings.bootstrap_servers
    stop = asyncio.Event()
    with _stop_on_signals(stop):
        try:
            printed = await tail(
                options.topic,
                bootstrap,
                from_beginning=options.from_beginning,
                key=options.key,
                count=options.count,
                stop=stop,
                notice=sys.stderr,
                client_options=kafka_client.client_options(settings),
            )
        except TopicMissing as error:
            hint = ""
            prefixed = settings.topic(options.topic)
            if prefixed != options.topic:
                hint = f" (the name is taken as given; with FAUSTAPP_TOPIC_PREFIX: {prefixed!r})"
            print(f"error: {error}{hint}", file=sys.stderr)
            return EXIT_FAILED
        except KafkaError as error:
            reason = await _diagnose(settings, error)
            print(f"error: cannot read from Kafka at {bootstrap}: {reason}", file=sys.stderr)
            return EXIT_FAILED
    if stop.is_set() and (options.count is None or printed < options.count):
        return EXIT_INTERRUPTED
    return 0


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
_DATASET_OPTIONS = ("items", "delete_ratio")


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


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event, notice: str | None = None) -> Iterator[None]:
    """While inside, SIGINT or SIGTERM sets ``stop`` (printing ``notice`` the first time)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def request_stop(signum: signal.Signals) -> None:
        if not stop.is_set() and notice:
            print(notice, file=sys.stderr)
        stop.set()
        # A second signal should kill the process the usual way, even if stopping hangs.
        loop.remove_signal_handler(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, request_stop, signum)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


async def _produce_until_signalled(config: GeneratorConfig, settings: Settings) -> int:
    bootstrap = settings.bootstrap_servers
    stop = asyncio.Event()
    notice = None if config.quiet else "stopping: flushing what was sent (interrupt again to abort)"
    with _stop_on_signals(stop, notice):
        try:
            report = await produce(
                config,
                bootstrap,
                stop=stop,
                client_options=kafka_client.client_options(settings),
            )
        except KafkaError as error:
            reason = await _diagnose(settings, error)
            print(f"error: cannot produce to Kafka at {bootstrap}: {reason}", file=sys.stderr)
            return EXIT_FAILED
    if report.failed:
        return EXIT_FAILED
    if report.interrupted:
        return EXIT_INTERRUPTED
    return 0


async def _diagnose(settings: Settings, error: KafkaError) -> str:
    """Why a client could not start: a refused login or certificate says so (aiokafka only
    reports "Unable to bootstrap"), anything else is the client's own error."""
    try:
        await kafka_client.probe(settings)
    except kafka_client.KafkaAccessRefused as refused:
        return str(refused)
    except KafkaError as unreachable:  # the probe says why each broker did not answer
        detail = str(unreachable).removeprefix("KafkaConnectionError: ")
        return f"{error} ({detail})" if detail else str(error)
    except (OSError, asyncio.TimeoutError):
        pass
    return str(error)


def _usage_error(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return EXIT_USAGE


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
