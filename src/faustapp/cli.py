"""The ``faustapp`` command: our own generator subcommands, everything else goes to Faust."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
from collections.abc import Callable, Sequence

from aiokafka.errors import KafkaError

from faustapp.generator import GeneratorConfig, produce
from faustapp.settings import Settings, SettingsError
from faustapp.topics import SENSOR_READINGS

#: Exit status for a run stopped by Ctrl-C or SIGTERM, as shells report it for SIGINT.
EXIT_INTERRUPTED = 130
EXIT_USAGE = 2
EXIT_FAILED = 1


def main() -> None:
    """Console-script entry point, so one command covers both the generator and the worker."""
    argv = sys.argv[1:]
    code = run_generate(argv[1:]) if argv[:1] == ["generate"] else run_faust()
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
    parser, sensors_parser = build_generate_parser()
    options = parser.parse_args(list(argv))
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        return _usage_error(error)
    try:
        config = GeneratorConfig(
            topic=options.topic or settings.topic(SENSOR_READINGS),
            rate=options.rate,
            count=options.count,
            sensors=options.sensors,
            disorder_ms=options.disorder_ms,
            bad_ratio=options.bad_ratio,
            seed=options.seed,
            start_ms=options.start_ms,
            interval_ms=options.interval_ms,
            quiet=options.quiet,
            partitions=options.partitions if options.partitions else settings.partitions,
            replication_factor=options.replication_factor,
        )
    except ValueError as error:
        sensors_parser.error(str(error))
    try:
        return asyncio.run(_produce_until_signalled(config, settings.bootstrap_servers))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def build_generate_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Build the ``generate`` parser; the sensors sub-parser is returned for its error reporting."""
    defaults = GeneratorConfig()
    parser = argparse.ArgumentParser(
        prog="faustapp generate",
        description="Produce synthetic data to Kafka for demos, tests and benchmarks.",
    )
    subcommands = parser.add_subparsers(dest="dataset", required=True, metavar="{sensors}")
    sensors = subcommands.add_parser(
        "sensors",
        help="IoT sensor readings to the sensor-readings topic",
        description=(
            "Produce IoT sensor readings keyed by sensor id, with bounded event-time disorder "
            "(each ts lies in [nominal - disorder-ms, nominal]) and a share of malformed "
            "records. The broker comes from FAUSTAPP_BROKER."
        ),
    )
    sensors.add_argument(
        "--topic",
        default=None,
        help=f"topic to produce to (default: FAUSTAPP_TOPIC_PREFIX + {defaults.topic})",
    )
    sensors.add_argument(
        "--rate",
        type=_non_negative_float,
        default=defaults.rate,
        help="readings per second; 0 sends as fast as possible (default: %(default)g)",
    )
    sensors.add_argument(
        "--count",
        type=_at_least(0),
        default=defaults.count,
        help="readings to produce; 0 runs until interrupted (default: %(default)s)",
    )
    sensors.add_argument(
        "--sensors",
        type=_at_least(1),
        default=defaults.sensors,
        help="distinct sensor ids (default: %(default)s)",
    )
    sensors.add_argument(
        "--disorder-ms",
        type=_at_least(0),
        default=defaults.disorder_ms,
        help="maximum shift of a reading back in event time, never forward (default: %(default)s)",
    )
    sensors.add_argument(
        "--bad-ratio",
        type=_ratio,
        default=defaults.bad_ratio,
        help="probability in [0, 1] that a record is malformed (default: %(default)g)",
    )
    sensors.add_argument(
        "--seed", type=int, default=None, help="seed for a reproducible run (default: random)"
    )
    sensors.add_argument(
        "--start-ms",
        type=_at_least(0),
        default=None,
        help="event time (epoch ms) of the first reading (default: now)",
    )
    sensors.add_argument(
        "--interval-ms",
        type=_non_negative_float,
        default=None,
        help="event-time step between consecutive readings (default: 1000/rate, or 1 if "
        "--rate 0), so event time tracks the wall clock",
    )
    sensors.add_argument(
        "--partitions",
        type=_at_least(1),
        default=None,
        help="partitions if the topic must be created (default: FAUSTAPP_PARTITIONS)",
    )
    sensors.add_argument(
        "--replication-factor",
        type=_at_least(1),
        default=defaults.replication_factor,
        help="replication factor if the topic must be created (default: %(default)s)",
    )
    sensors.add_argument("--quiet", action="store_true", help="no progress or summary output")
    return parser, sensors


async def _produce_until_signalled(config: GeneratorConfig, bootstrap: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def request_stop(signum: signal.Signals) -> None:
        if not stop.is_set() and not config.quiet:
            print("stopping: flushing what was sent (interrupt again to abort)", file=sys.stderr)
        stop.set()
        # A second signal should kill the process the usual way, even if the flush hangs.
        loop.remove_signal_handler(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, request_stop, signum)
            installed.append(signum)
    try:
        report = await produce(config, bootstrap, stop=stop)
    except KafkaError as error:
        print(f"error: cannot produce to Kafka at {bootstrap}: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    if report.failed:
        return EXIT_FAILED
    if report.interrupted:
        return EXIT_INTERRUPTED
    return 0


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
