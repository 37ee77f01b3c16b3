"""The ``faustapp`` command must route, validate and report exit codes the way scripts expect."""

from __future__ import annotations

import os
import sys
import types
from typing import Any

import pytest

from faustapp import cli
from faustapp.generator import GeneratorConfig, ProduceReport
from faustapp.settings import SettingsError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("FAUSTAPP_"):
            monkeypatch.delenv(name)


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["faustapp", *args])
    try:
        cli.main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def make_report(**overrides: Any) -> ProduceReport:
    fields: dict[str, Any] = {
        "topic": "sensor-readings",
        "requested": 10,
        "sent": 10,
        "acked": 10,
        "failed": 0,
        "bad": 0,
        "bad_by_kind": {},
        "elapsed_s": 0.1,
        "interrupted": False,
        "seed": 1,
        "start_ms": 0,
    }
    fields.update(overrides)
    return ProduceReport(**fields)


class RecordingProduce:
    """Stands in for the Kafka loop so the CLI can be checked without a broker."""

    def __init__(self, report: ProduceReport) -> None:
        self.report = report
        self.calls: list[tuple[GeneratorConfig, str]] = []

    async def __call__(
        self, config: GeneratorConfig, bootstrap: str, **kwargs: object
    ) -> ProduceReport:
        self.calls.append((config, bootstrap))
        return self.report


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> RecordingProduce:
    fake = RecordingProduce(make_report())
    monkeypatch.setattr(cli, "produce", fake)
    return fake


def test_generate_sensors_help_works(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, "generate", "sensors", "--help") == 0
    out = capsys.readouterr().out
    assert "usage: faustapp generate sensors" in out
    for option in ("--rate", "--count", "--sensors", "--disorder-ms", "--bad-ratio", "--seed"):
        assert option in out


def test_generate_help_lists_sensors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, "generate", "--help") == 0
    assert "sensors" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "-1"], "--rate"),
        (["--rate", "fast"], "--rate"),
        (["--bad-ratio", "1.5"], "--bad-ratio"),
        (["--bad-ratio", "-0.1"], "--bad-ratio"),
        (["--sensors", "0"], "--sensors"),
        (["--count", "-5"], "--count"),
        (["--count", "1e3"], "--count"),
        (["--disorder-ms", "-1"], "--disorder-ms"),
        (["--partitions", "0"], "--partitions"),
        (["--interval-ms", "nan"], "--interval-ms"),
        (["--no-such-option"], "unrecognized"),
    ],
)
def test_bad_option_values_exit_2_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recorded: RecordingProduce,
    args: list[str],
    message: str,
) -> None:
    assert run_main(monkeypatch, "generate", "sensors", *args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    assert recorded.calls == []


@pytest.mark.parametrize("args", [[], ["planets"]])
def test_missing_or_unknown_dataset_exits_2(
    monkeypatch: pytest.MonkeyPatch, recorded: RecordingProduce, args: list[str]
) -> None:
    assert run_main(monkeypatch, "generate", *args) == 2
    assert recorded.calls == []


def test_settings_error_exits_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recorded: RecordingProduce,
) -> None:
    monkeypatch.setenv("FAUSTAPP_BROKER", "not a broker")
    assert run_main(monkeypatch, "generate", "sensors") == 2
    assert capsys.readouterr().err.startswith("error: FAUSTAPP_BROKER=")
    assert recorded.calls == []


def test_options_reach_the_generator(
    monkeypatch: pytest.MonkeyPatch, recorded: RecordingProduce
) -> None:
    monkeypatch.setenv("FAUSTAPP_BROKER", "kafka://kafka-1:9093")
    monkeypatch.setenv("FAUSTAPP_PARTITIONS", "12")
    code = run_main(
        monkeypatch,
        "generate",
        "sensors",
        "--rate=2000",
        "--count=100000",
        "--sensors=500",
        "--disorder-ms=3000",
        "--bad-ratio=0.001",
        "--seed=9",
        "--start-ms=1732435200000",
        "--interval-ms=0.25",
        "--topic=readings-test",
        "--quiet",
    )
    assert code == 0
    ((config, bootstrap),) = recorded.calls
    assert bootstrap == "kafka-1:9093"
    assert config == GeneratorConfig(
        topic="readings-test",
        rate=2000.0,
        count=100_000,
        keys=500,
        disorder_ms=3000,
        bad_ratio=0.001,
        seed=9,
        start_ms=1_732_435_200_000,
        interval_ms=0.25,
        quiet=True,
        partitions=12,
    )


def test_partitions_option_overrides_settings(
    monkeypatch: pytest.MonkeyPatch, recorded: RecordingProduce
) -> None:
    monkeypatch.setenv("FAUSTAPP_PARTITIONS", "12")
    assert run_main(monkeypatch, "generate", "sensors", "--partitions", "3", "--rate", "0") == 0
    ((config, _),) = recorded.calls
    assert (config.partitions, config.rate) == (3, 0.0)


@pytest.mark.parametrize(
    ("report", "expected_code"),
    [
        (make_report(), 0),
        (make_report(interrupted=True, sent=5, acked=5), 130),
        (make_report(acked=9, failed=1, first_error="boom"), 1),
    ],
)
def test_exit_code_reflects_the_run(
    monkeypatch: pytest.MonkeyPatch,
    recorded: RecordingProduce,
    report: ProduceReport,
    expected_code: int,
) -> None:
    recorded.report = report
    assert run_main(monkeypatch, "generate", "sensors", "--quiet") == expected_code


def test_unreachable_broker_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aiokafka.errors import KafkaConnectionError

    async def unreachable(config: GeneratorConfig, bootstrap: str, **kwargs: object) -> None:
        raise KafkaConnectionError("Unable to bootstrap")

    monkeypatch.setattr(cli, "produce", unreachable)
    assert run_main(monkeypatch, "generate", "sensors") == 1
    assert "error: cannot produce to Kafka at 127.0.0.1:9092" in capsys.readouterr().err


def test_other_commands_go_to_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    fake_app = types.SimpleNamespace(main=lambda: seen.append(list(sys.argv)))
    monkeypatch.setitem(sys.modules, "faustapp.app", types.SimpleNamespace(app=fake_app))
    assert run_main(monkeypatch, "worker", "-l", "info") == 0
    assert seen == [["faustapp", "worker", "-l", "info"]]


def test_settings_error_from_faust_app_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken_main() -> None:
        raise SettingsError("FAUSTAPP_WEB_PORT=0 is out of range [1, 65535]")

    fake_app = types.SimpleNamespace(main=broken_main)
    monkeypatch.setitem(sys.modules, "faustapp.app", types.SimpleNamespace(app=fake_app))
    assert run_main(monkeypatch, "worker") == 2
    assert capsys.readouterr().err == "error: FAUSTAPP_WEB_PORT=0 is out of range [1, 65535]\n"


# --- generate trades / generate logs -----------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "keys_flag", "topic"),
    [("trades", "--symbols", "trades"), ("logs", "--services", "app-logs")],
)
def test_generate_trades_and_logs_help_works(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    dataset: str,
    keys_flag: str,
    topic: str,
) -> None:
    assert run_main(monkeypatch, "generate", dataset, "--help") == 0
    out = capsys.readouterr().out
    assert f"usage: faustapp generate {dataset}" in out
    for option in (
        "--topic",
        "--rate",
        "--count",
        "--keys",
        keys_flag,
        "--disorder-ms",
        "--bad-ratio",
        "--seed",
        "--start-ms",
        "--interval-ms",
        "--partitions",
        "--replication-factor",
        "--quiet",
    ):
        assert option in out
    assert "--sensors" not in out
    assert f"FAUSTAPP_TOPIC_PREFIX + {topic})" in " ".join(out.split())


def test_generate_help_lists_every_dataset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, "generate", "--help") == 0
    out = capsys.readouterr().out
    assert "{sensors,trades,logs,clicks,products}" in out
    assert "trades to the trades topic" in out
    assert "application log lines to the app-logs topic" in out
    assert "shop click events to the clicks topic" in out
    assert "the product catalogue to the compacted products topic" in out


def test_sensors_help_is_unchanged_apart_from_the_keys_alias(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, "generate", "sensors", "--help") == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "Produce IoT sensor readings keyed by sensor id",
        "--sensors SENSORS, --keys SENSORS distinct sensor ids (default: 500)",
        "readings per second; 0 sends as fast as possible (default: 2000)",
        "readings to produce; 0 runs until interrupted (default: 100000)",
        "maximum shift of a reading back in event time, never forward (default: 3000)",
        "event time (epoch ms) of the first reading (default: now)",
        "FAUSTAPP_TOPIC_PREFIX + sensor-readings",
    ):
        assert text in out


@pytest.mark.parametrize("dataset", ["trades", "logs"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "-1"], "--rate"),
        (["--bad-ratio", "2"], "--bad-ratio"),
        (["--keys", "0"], "--keys"),
        (["--count", "x"], "--count"),
        (["--disorder-ms", "-1"], "--disorder-ms"),
        (["--start-ms", "-5"], "--start-ms"),
        (["--interval-ms", "inf"], "--interval-ms"),
        (["--replication-factor", "0"], "--replication-factor"),
        (["--sensors", "5"], "unrecognized arguments: --sensors"),
    ],
)
def test_trades_and_logs_bad_option_values_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recorded: RecordingProduce,
    dataset: str,
    args: list[str],
    message: str,
) -> None:
    assert run_main(monkeypatch, "generate", dataset, *args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    if not message.startswith("unrecognized"):
        assert f"faustapp generate {dataset}: error: argument " in err
    assert recorded.calls == []


@pytest.mark.parametrize(
    ("dataset", "keys_flag", "topic"),
    [("trades", "--symbols", "trades"), ("logs", "--services", "app-logs")],
)
def test_trades_and_logs_options_reach_the_generator(
    monkeypatch: pytest.MonkeyPatch,
    recorded: RecordingProduce,
    dataset: str,
    keys_flag: str,
    topic: str,
) -> None:
    monkeypatch.setenv("FAUSTAPP_BROKER", "kafka://kafka-1:9093")
    monkeypatch.setenv("FAUSTAPP_TOPIC_PREFIX", "staging-")
    monkeypatch.setenv("FAUSTAPP_PARTITIONS", "6")
    code = run_main(
        monkeypatch,
        "generate",
        dataset,
        "--rate=500",
        "--count=2500",
        f"{keys_flag}=7",
        "--disorder-ms=100",
        "--bad-ratio=0.25",
        "--seed=3",
        "--start-ms=1732435200000",
        "--interval-ms=20",
        "--replication-factor=3",
        "--quiet",
    )
    assert code == 0
    ((config, bootstrap),) = recorded.calls
    assert bootstrap == "kafka-1:9093"
    assert config == GeneratorConfig(
        topic=f"staging-{topic}",
        rate=500.0,
        count=2500,
        keys=7,
        disorder_ms=100,
        bad_ratio=0.25,
        seed=3,
        start_ms=1_732_435_200_000,
        interval_ms=20.0,
        quiet=True,
        partitions=6,
        replication_factor=3,
        dataset=dataset,
    )


@pytest.mark.parametrize("dataset", ["sensors", "trades", "logs"])
def test_keys_is_accepted_by_every_dataset(
    monkeypatch: pytest.MonkeyPatch, recorded: RecordingProduce, dataset: str
) -> None:
    assert run_main(monkeypatch, "generate", dataset, "--keys", "9", "--topic", "t") == 0
    ((config, _),) = recorded.calls
    assert (config.dataset, config.keys, config.topic) == (dataset, 9, "t")


@pytest.mark.parametrize("dataset", ["trades", "logs"])
def test_trades_and_logs_defaults(
    monkeypatch: pytest.MonkeyPatch, recorded: RecordingProduce, dataset: str
) -> None:
    assert run_main(monkeypatch, "generate", dataset) == 0
    ((config, bootstrap),) = recorded.calls
    assert bootstrap == "127.0.0.1:9092"
    assert config == GeneratorConfig.for_dataset(dataset)
    assert config.topic == {"trades": "trades", "logs": "app-logs"}[dataset]
    assert config.keys == {"trades": 20, "logs": 12}[dataset]


def test_sensors_defaults_are_unchanged(
    monkeypatch: pytest.MonkeyPatch, recorded: RecordingProduce
) -> None:
    monkeypatch.setenv("FAUSTAPP_TOPIC_PREFIX", "dev.")
    assert run_main(monkeypatch, "generate", "sensors") == 0
    ((config, _),) = recorded.calls
    assert config == GeneratorConfig(topic="dev.sensor-readings")
    assert (config.dataset, config.keys, config.rate, config.count) == (
        "sensors",
        500,
        2000.0,
        100_000,
    )
    assert (config.disorder_ms, config.bad_ratio, config.partitions) == (3000, 0.001, 4)


@pytest.mark.parametrize(
    ("report", "expected_code"),
    [(make_report(topic="trades"), 0), (make_report(topic="trades", failed=2, acked=8), 1)],
)
def test_trades_exit_code_reflects_the_run(
    monkeypatch: pytest.MonkeyPatch,
    recorded: RecordingProduce,
    report: ProduceReport,
    expected_code: int,
) -> None:
    recorded.report = report
    assert run_main(monkeypatch, "generate", "trades", "--quiet") == expected_code


# --- generate clicks / generate products --------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "keys_flag", "extra", "absent"),
    [
        ("clicks", "--users", "--items ITEMS ", "--delete-ratio"),
        ("products", "--items", "--delete-ratio DELETE_RATIO ", "--users"),
    ],
)
def test_generate_clicks_and_products_help_works(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    dataset: str,
    keys_flag: str,
    extra: str,
    absent: str,
) -> None:
    assert run_main(monkeypatch, "generate", dataset, "--help") == 0
    out = " ".join(capsys.readouterr().out.split()) + " "
    assert f"usage: faustapp generate {dataset}" in out
    for option in (
        "--topic",
        "--rate",
        "--count",
        "--keys",
        keys_flag,
        "--disorder-ms",
        "--bad-ratio",
        "--seed",
        "--start-ms",
        "--interval-ms",
        "--partitions",
        "--replication-factor",
        "--quiet",
    ):
        assert option in out
    assert extra in out and absent not in out
    assert f"FAUSTAPP_TOPIC_PREFIX + {dataset})" in out


def test_products_help_says_what_the_catalogue_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, "generate", "products", "--help") == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "cleanup.policy=compact",
        "tombstones",
        "--items ITEMS, --keys ITEMS catalogue items sku-0 .. sku-{N-1}, the first N records "
        "(default: 1000)",
        "no effect: product records carry no event time (default: 0)",
        "a tombstone (default: 0.01)",
        "product records per second; 0 sends as fast as possible (default: 100)",
        "product records to produce; 0 runs until interrupted (default: 2000)",
    ):
        assert text in out


@pytest.mark.parametrize(
    ("dataset", "args", "message"),
    [
        ("clicks", ["--users", "0"], "--users"),
        ("clicks", ["--items", "0"], "--items"),
        ("clicks", ["--items", "many"], "--items"),
        ("clicks", ["--delete-ratio", "0.1"], "unrecognized arguments: --delete-ratio"),
        ("products", ["--items", "0"], "--items"),
        ("products", ["--delete-ratio", "1.5"], "--delete-ratio"),
        ("products", ["--delete-ratio", "x"], "--delete-ratio"),
        ("products", ["--users", "5"], "unrecognized arguments: --users"),
    ],
)
def test_clicks_and_products_bad_option_values_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recorded: RecordingProduce,
    dataset: str,
    args: list[str],
    message: str,
) -> None:
    assert run_main(monkeypatch, "generate", dataset, *args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    assert recorded.calls == []


def test_clicks_options_reach_the_generator(
    monkeypatch: pytest.MonkeyPatch, recorded: RecordingProduce
) -> None:
    monkeypatch.setenv("FAUSTAPP_TOPIC_PREFIX", "staging-")
    code = run_main(
        monkeypatch,
        "generate",
        "clicks",
        "--rate=50",
        "--count=700",
        "--users=300",
        "--items=80",
        "--disorder-ms=10",
        "--bad-ratio=0.5",
        "--seed=4",
        "--start-ms=1732435200000",
        "--interval-ms=1000",
        "--partitions=2",
        "--quiet",
    )
    assert code == 0
    ((config, _),) = recorded.calls
    assert config == GeneratorConfig(
        topic="staging-clicks",
        rate=50.0,
        count=700,
        keys=300,
        items=80,
        disorder_ms=10,
        bad_ratio=0.5,
        seed=4,
        start_ms=1_732_435_200_000,
        interval_ms=1000.0,
        quiet=True,
        partitions=2,
        dataset="clicks",
    )


def test_products_options_reach_the_generator(
    monkeypatch: pytest.MonkeyPatch, recorded: RecordingProduce
) -> None:
    code = run_main(
        monkeypatch,
        "generate",
        "products",
        "--items=40",
        "--delete-ratio=0.25",
        "--count=0",
        "--rate=2",
        "--topic=catalogue",
    )
    assert code == 0
    ((config, _),) = recorded.calls
    assert (config.dataset, config.keys, config.delete_ratio) == ("products", 40, 0.25)
    assert (config.count, config.rate, config.topic) == (0, 2.0, "catalogue")
    assert (config.items, config.disorder_ms) == (1000, 0)


@pytest.mark.parametrize("dataset", ["clicks", "products"])
def test_clicks_and_products_defaults(
    monkeypatch: pytest.MonkeyPatch, recorded: RecordingProduce, dataset: str
) -> None:
    assert run_main(monkeypatch, "generate", dataset) == 0
    ((config, bootstrap),) = recorded.calls
    assert bootstrap == "127.0.0.1:9092"
    assert config == GeneratorConfig.for_dataset(dataset)
    assert config.topic == dataset
    expected = {"clicks": (50_000, 100.0, 100_000), "products": (1000, 100.0, 2000)}
    assert (config.keys, config.rate, config.count) == expected[dataset]


# --- tail ----------------------------------------------------------------------------------


class RecordingTail:
    """Stands in for the Kafka consumer loop of ``faustapp tail``."""

    def __init__(self, printed: int = 0, error: Exception | None = None) -> None:
        self.printed = printed
        self.error = error
        self.interrupt = False
        self.calls: list[tuple[str, str, dict[str, object]]] = []

    async def __call__(self, topic: str, bootstrap: str, **options: Any) -> int:
        self.calls.append((topic, bootstrap, options))
        if self.interrupt:
            options["stop"].set()
        if self.error is not None:
            raise self.error
        return self.printed


@pytest.fixture
def tailed(monkeypatch: pytest.MonkeyPatch) -> RecordingTail:
    fake = RecordingTail()
    monkeypatch.setattr(cli, "tail", fake)
    return fake


def test_tail_options_reach_the_consumer_loop(
    monkeypatch: pytest.MonkeyPatch, tailed: RecordingTail
) -> None:
    monkeypatch.setenv("FAUSTAPP_BROKER", "kafka://kafka-1:9093,kafka-2:9093")
    monkeypatch.setenv("FAUSTAPP_TOPIC_PREFIX", "staging-")
    tailed.printed = 5
    code = run_main(
        monkeypatch, "tail", "clicks", "--from-beginning", "--key", "u-42", "--count", "5"
    )
    assert code == 0
    ((topic, bootstrap, options),) = tailed.calls
    assert (topic, bootstrap) == ("clicks", "kafka-1:9093,kafka-2:9093")
    assert (options["from_beginning"], options["key"], options["count"]) == (True, "u-42", 5)
    assert options["notice"] is sys.stderr


def test_tail_defaults_start_at_the_end_and_run_unbounded(
    monkeypatch: pytest.MonkeyPatch, tailed: RecordingTail
) -> None:
    assert run_main(monkeypatch, "tail", "faustapp-dlq") == 0
    ((topic, bootstrap, options),) = tailed.calls
    assert (topic, bootstrap) == ("faustapp-dlq", "127.0.0.1:9092")
    assert (options["from_beginning"], options["key"], options["count"]) == (False, None, None)


def test_tail_interrupted_exits_130(monkeypatch: pytest.MonkeyPatch, tailed: RecordingTail) -> None:
    tailed.interrupt = True
    assert run_main(monkeypatch, "tail", "clicks") == 130
    tailed.printed = 3
    assert run_main(monkeypatch, "tail", "clicks", "--count", "5") == 130
    tailed.printed = 5
    assert run_main(monkeypatch, "tail", "clicks", "--count", "5") == 0


def test_tail_of_a_missing_topic_exits_1_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tailed: RecordingTail
) -> None:
    from faustapp.tail import TopicMissing

    tailed.error = TopicMissing("topic 'clicks' does not exist at 127.0.0.1:9092")
    assert run_main(monkeypatch, "tail", "clicks") == 1
    assert capsys.readouterr().err == "error: topic 'clicks' does not exist at 127.0.0.1:9092\n"
    monkeypatch.setenv("FAUSTAPP_TOPIC_PREFIX", "dev.")
    assert run_main(monkeypatch, "tail", "clicks") == 1
    assert capsys.readouterr().err == (
        "error: topic 'clicks' does not exist at 127.0.0.1:9092 "
        "(the name is taken as given; with FAUSTAPP_TOPIC_PREFIX: 'dev.clicks')\n"
    )


def test_tail_kafka_error_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tailed: RecordingTail
) -> None:
    from aiokafka.errors import KafkaConnectionError

    tailed.error = KafkaConnectionError("Unable to bootstrap")
    assert run_main(monkeypatch, "tail", "clicks") == 1
    assert "error: cannot read from Kafka at 127.0.0.1:9092" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: topic"),
        (["clicks", "--count", "0"], "--count"),
        (["clicks", "--count", "ten"], "--count"),
        (["clicks", "--follow"], "unrecognized arguments: --follow"),
    ],
)
def test_tail_bad_options_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tailed: RecordingTail,
    args: list[str],
    message: str,
) -> None:
    assert run_main(monkeypatch, "tail", *args) == 2
    err = capsys.readouterr().err
    assert "faustapp tail: error:" in err and message in err
    assert tailed.calls == []


def test_tail_settings_error_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tailed: RecordingTail
) -> None:
    monkeypatch.setenv("FAUSTAPP_BROKER", "not a broker")
    assert run_main(monkeypatch, "tail", "clicks") == 2
    assert capsys.readouterr().err.startswith("error: FAUSTAPP_BROKER=")
    assert tailed.calls == []


def test_tail_help_says_the_topic_is_taken_as_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, "tail", "--help") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "usage: faustapp tail [-h] [--from-beginning] [--key KEY] [--count N] topic" in out
    assert "taken as given: FAUSTAPP_TOPIC_PREFIX is not added" in out
