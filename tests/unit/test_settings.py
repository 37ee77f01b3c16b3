"""Settings from ``FAUSTAPP_*`` variables: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from faustapp.settings import GUARANTEES, Settings, SettingsError


def test_defaults_from_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings.broker == "kafka://127.0.0.1:9092"
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.web_host == "127.0.0.1"
    assert settings.web_port == 6066
    assert settings.data_dir == Path(".data").absolute()
    assert settings.data_dir.is_absolute()
    assert settings.partitions == 4
    assert settings.processing_guarantee == "at_least_once"
    assert settings.grace_ms == 10_000
    assert settings.batch_size == 1000
    assert settings.batch_within_ms == 50
    assert settings.app_id == "faustapp"
    assert settings.topic_prefix == ""
    assert settings.session_timeout_ms == 10_000
    assert settings.max_future_skew_ms == 3_600_000
    assert settings.idle_close_ms == 0
    assert settings.fetch_max_wait_ms == 100
    assert settings.topic("sensor-readings") == "sensor-readings"


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"FAUSTAPP": "x", "BROKER": "nonsense", "PORT": "0"}) == (
        Settings.from_env({})
    )


def test_blank_values_mean_the_default() -> None:
    blank = {
        name: "  "
        for name in (
            "FAUSTAPP_BROKER",
            "FAUSTAPP_WEB_HOST",
            "FAUSTAPP_WEB_PORT",
            "FAUSTAPP_PARTITIONS",
            "FAUSTAPP_PROCESSING_GUARANTEE",
            "FAUSTAPP_GRACE_MS",
            "FAUSTAPP_BATCH_SIZE",
            "FAUSTAPP_BATCH_WITHIN_MS",
            "FAUSTAPP_APP_ID",
            "FAUSTAPP_TOPIC_PREFIX",
            "FAUSTAPP_SESSION_TIMEOUT_MS",
            "FAUSTAPP_MAX_FUTURE_SKEW_MS",
            "FAUSTAPP_IDLE_CLOSE_MS",
            "FAUSTAPP_FETCH_MAX_WAIT_MS",
        )
    }
    assert Settings.from_env(blank) == Settings.from_env({})


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAUSTAPP_WEB_PORT", "7070")
    assert Settings.from_env().web_port == 7070


@pytest.mark.parametrize(
    ("name", "raw", "attribute", "expected"),
    [
        ("FAUSTAPP_WEB_HOST", "0.0.0.0", "web_host", "0.0.0.0"),
        ("FAUSTAPP_WEB_HOST", " ::1 ", "web_host", "::1"),
        ("FAUSTAPP_WEB_PORT", "8080", "web_port", 8080),
        ("FAUSTAPP_WEB_PORT", " 1 ", "web_port", 1),
        ("FAUSTAPP_WEB_PORT", "65535", "web_port", 65535),
        ("FAUSTAPP_PARTITIONS", "12", "partitions", 12),
        ("FAUSTAPP_PARTITIONS", "1", "partitions", 1),
        ("FAUSTAPP_PROCESSING_GUARANTEE", "exactly_once", "processing_guarantee", "exactly_once"),
        ("FAUSTAPP_PROCESSING_GUARANTEE", " Exactly_Once ", "processing_guarantee", "exactly_once"),
        ("FAUSTAPP_PROCESSING_GUARANTEE", "at_least_once", "processing_guarantee", "at_least_once"),
        ("FAUSTAPP_GRACE_MS", "0", "grace_ms", 0),
        ("FAUSTAPP_GRACE_MS", "2500", "grace_ms", 2500),
        ("FAUSTAPP_GRACE_MS", str(7 * 86_400_000), "grace_ms", 7 * 86_400_000),
        ("FAUSTAPP_BATCH_SIZE", "1", "batch_size", 1),
        ("FAUSTAPP_BATCH_SIZE", "5000", "batch_size", 5000),
        ("FAUSTAPP_BATCH_WITHIN_MS", "250", "batch_within_ms", 250),
        ("FAUSTAPP_APP_ID", "analytics-eu", "app_id", "analytics-eu"),
        ("FAUSTAPP_APP_ID", " spaced ", "app_id", "spaced"),
        ("FAUSTAPP_APP_ID", "", "app_id", "faustapp"),
        ("FAUSTAPP_APP_ID", "a.b_c-D9", "app_id", "a.b_c-D9"),
        ("FAUSTAPP_TOPIC_PREFIX", "staging.", "topic_prefix", "staging."),
        ("FAUSTAPP_TOPIC_PREFIX", "", "topic_prefix", ""),
        ("FAUSTAPP_SESSION_TIMEOUT_MS", "6000", "session_timeout_ms", 6000),
        ("FAUSTAPP_SESSION_TIMEOUT_MS", "300000", "session_timeout_ms", 300_000),
        ("FAUSTAPP_MAX_FUTURE_SKEW_MS", "0", "max_future_skew_ms", 0),
        ("FAUSTAPP_MAX_FUTURE_SKEW_MS", "60000", "max_future_skew_ms", 60_000),
        ("FAUSTAPP_IDLE_CLOSE_MS", "0", "idle_close_ms", 0),
        ("FAUSTAPP_IDLE_CLOSE_MS", "30000", "idle_close_ms", 30_000),
        ("FAUSTAPP_FETCH_MAX_WAIT_MS", "1", "fetch_max_wait_ms", 1),
        ("FAUSTAPP_FETCH_MAX_WAIT_MS", "500", "fetch_max_wait_ms", 500),
    ],
)
def test_each_variable_is_parsed(name: str, raw: str, attribute: str, expected: object) -> None:
    settings = Settings.from_env({name: raw})
    assert getattr(settings, attribute) == expected
    # ... and nothing else changes.
    defaults = Settings.from_env({})
    for other in ("broker", "web_host", "web_port", "partitions", "processing_guarantee"):
        if other != attribute:
            assert getattr(settings, other) == getattr(defaults, other)


def test_data_dir_is_made_absolute(tmp_path: Path) -> None:
    assert Settings.from_env({"FAUSTAPP_DATA_DIR": str(tmp_path)}).data_dir == tmp_path
    relative = Settings.from_env({"FAUSTAPP_DATA_DIR": "state/here"}).data_dir
    assert relative == Path("state/here").absolute()


def test_topic_prefix_is_prepended_to_topic_names() -> None:
    settings = Settings.from_env({"FAUSTAPP_TOPIC_PREFIX": "team-a."})
    assert settings.topic("sensor-readings") == "team-a.sensor-readings"


def test_every_guarantee_is_accepted() -> None:
    for guarantee in GUARANTEES:
        settings = Settings.from_env({"FAUSTAPP_PROCESSING_GUARANTEE": guarantee})
        assert settings.processing_guarantee == guarantee


@pytest.mark.parametrize(
    ("raw", "broker", "bootstrap"),
    [
        ("kafka://10.0.0.5:9093", "kafka://10.0.0.5:9093", "10.0.0.5:9093"),
        ("broker-1:9092", "kafka://broker-1:9092", "broker-1:9092"),
        ("aiokafka://b:19092", "aiokafka://b:19092", "b:19092"),
        ("kafka://a:1;kafka://b:2", "kafka://a:1;kafka://b:2", "a:1,b:2"),
        ("kafka://a:1,b:2", "kafka://a:1,b:2", "a:1,b:2"),
        ("a:1, b:2", "kafka://a:1, b:2", "a:1,b:2"),
        ("kafka://[::1]:9092", "kafka://[::1]:9092", "[::1]:9092"),
        ("  kafka://a:1  ", "kafka://a:1", "a:1"),
    ],
)
def test_broker(raw: str, broker: str, bootstrap: str) -> None:
    settings = Settings.from_env({"FAUSTAPP_BROKER": raw})
    assert settings.broker == broker
    assert settings.bootstrap_servers == bootstrap


def assert_rejected(name: str, raw: str) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: raw})
    assert name in str(caught.value), str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("FAUSTAPP_WEB_PORT", "http"),
        ("FAUSTAPP_WEB_PORT", "80.5"),
        ("FAUSTAPP_WEB_PORT", "0x50"),
        ("FAUSTAPP_WEB_PORT", "0"),
        ("FAUSTAPP_WEB_PORT", "-1"),
        ("FAUSTAPP_WEB_PORT", "65536"),
        ("FAUSTAPP_WEB_PORT", "70000"),
        ("FAUSTAPP_PARTITIONS", "0"),
        ("FAUSTAPP_PARTITIONS", "four"),
        ("FAUSTAPP_PARTITIONS", "10001"),
        ("FAUSTAPP_PROCESSING_GUARANTEE", "exactly-once"),
        ("FAUSTAPP_PROCESSING_GUARANTEE", "at_most_once"),
        ("FAUSTAPP_PROCESSING_GUARANTEE", "true"),
        ("FAUSTAPP_GRACE_MS", "-1"),
        ("FAUSTAPP_GRACE_MS", "-10000"),
        ("FAUSTAPP_GRACE_MS", "1.5"),
        ("FAUSTAPP_GRACE_MS", str(7 * 86_400_000 + 1)),
        ("FAUSTAPP_BATCH_SIZE", "0"),
        ("FAUSTAPP_BATCH_SIZE", "1000001"),
        ("FAUSTAPP_BATCH_WITHIN_MS", "0"),
        ("FAUSTAPP_BATCH_WITHIN_MS", "60001"),
        ("FAUSTAPP_APP_ID", "my app"),
        ("FAUSTAPP_APP_ID", "app/1"),
        ("FAUSTAPP_APP_ID", "a" * 101),
        ("FAUSTAPP_TOPIC_PREFIX", "pre fix"),
        ("FAUSTAPP_TOPIC_PREFIX", "ünicode"),
        ("FAUSTAPP_SESSION_TIMEOUT_MS", "5999"),
        ("FAUSTAPP_SESSION_TIMEOUT_MS", "300001"),
        ("FAUSTAPP_SESSION_TIMEOUT_MS", "10s"),
        ("FAUSTAPP_MAX_FUTURE_SKEW_MS", "-1"),
        ("FAUSTAPP_MAX_FUTURE_SKEW_MS", "1h"),
        ("FAUSTAPP_IDLE_CLOSE_MS", "-1"),
        ("FAUSTAPP_IDLE_CLOSE_MS", str(10**9 + 1)),
        ("FAUSTAPP_FETCH_MAX_WAIT_MS", "0"),
        ("FAUSTAPP_FETCH_MAX_WAIT_MS", "30001"),
        ("FAUSTAPP_FETCH_MAX_WAIT_MS", "1.5s"),
        ("FAUSTAPP_BROKER", "kafka://127.0.0.1"),
        ("FAUSTAPP_BROKER", "localhost"),
        ("FAUSTAPP_BROKER", "kafka://a:1,b"),
        ("FAUSTAPP_BROKER", "http://127.0.0.1:9092"),
        ("FAUSTAPP_BROKER", "kafka://:9092"),
        ("FAUSTAPP_BROKER", "kafka://a:1,"),
    ],
)
def test_bad_values_name_the_variable(name: str, raw: str) -> None:
    error = assert_rejected(name, raw)
    assert repr(raw.strip()) in str(error) or raw.strip() in str(error)


@pytest.mark.parametrize(
    "raw", ["kafka://127.0.0.1:abc", "kafka://127.0.0.1:99999", "broker:-1", "kafka://h:0"]
)
def test_broker_with_a_bad_port_names_the_variable(raw: str) -> None:
    """A non-numeric, out-of-range or zero broker port is a settings error, not a crash."""
    assert_rejected("FAUSTAPP_BROKER", raw)


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)
