"""The ``faustapp`` command: our own ``generate`` and ``tail`` subcommands, everything else goes
to Faust."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence

from aiokafka.errors import KafkaError

from faustapp import kafka_client
from faustapp.generate_options import DATASET_OPTIONS, build_generate_parser
from faustapp.generator import (
    DATASETS,
    GeneratorConfig,
    produce,
)
from faustapp.log_limits import limit_repeats
from faustapp.settings import Settings, SettingsError
from faustapp.tail import TopicMissing, build_parser, tail

#: Exit status for a run stopped by Ctrl-C or SIGTERM, as shells report it for SIGINT.
EXIT_INTERRUPTED = 130
EXIT_USAGE = 2
EXIT_FAILED = 1


def main() -> None:
    """Console-script entry point, so one command covers the generator, tail and the worker."""
    argv = sys.argv[1:]
    limit_repeats()  # a broker that is away must not flood the log with the client's retries
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
            **{name: getattr(options, name) for name in DATASET_OPTIONS if name in options},
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
