import pytest

from bchooks.config import SETTINGS, Config
from bchooks.errors import ConfigError


def test_defaults():
    config = Config.load(env={})
    assert (config.db, config.host, config.port, config.path, config.synchronous) == \
        ("bchooks.db", "127.0.0.1", 8080, "/webhook", "NORMAL")
    assert config.secrets == () and config.webhook_url == "http://127.0.0.1:8080/webhook"


def test_explicit_beats_env_beats_default():
    env = {"BCHOOKS_PORT": "9000", "BCHOOKS_DB": "env.db", "BCHOOKS_SECRET": " a , b ,"}
    config = Config.load(env=env, port="9100")
    assert (config.port, config.db, config.secrets) == (9100, "env.db", ("a", "b"))


@pytest.mark.parametrize("env,needle", [
    ({"BCHOOKS_PORT": "http"}, "BCHOOKS_PORT must be a whole number"),
    ({"BCHOOKS_WORKERS": "0"}, "at least 1"),
    ({"BCHOOKS_SYNCHRONOUS": "OFF"}, "NORMAL or FULL"),
    ({"BCHOOKS_SECRET": ", ,"}, "holds no secret"),
    ({"BCHOOKS_API_URL": "ftp://x"}, "absolute http"),
    ({"BCHOOKS_BUSY_TIMEOUT": "soon"}, "number of seconds"),
])
def test_malformed_values_name_the_variable(env, needle):
    with pytest.raises(ConfigError, match=needle):
        Config.load(env=env)


def test_repr_hides_secret_and_token():
    config = Config.load(env={"BCHOOKS_SECRET": "hunter2", "BCHOOKS_TOKEN": "tok-swordfish",
                               "BCHOOKS_CHAT_WEBHOOK_URL": "https://hooks.example.com/T0/B0/xyzzy"})
    assert "hunter2" not in repr(config) and "swordfish" not in repr(config) and "xyzzy" not in repr(config)
    assert config.secrets == ("hunter2",) and config.token == "tok-swordfish"


def test_every_setting_is_a_config_field():
    assert [s.field for s in SETTINGS] == [f for f in Config.__dataclass_fields__]


def test_a_postgresql_url_selects_that_engine_and_other_urls_are_refused_with_a_sentence():
    config = Config.load(env={"BCHOOKS_DB": "postgresql://bchooks:hunter2@db.example/bchooks"})
    assert config.db == "postgresql://bchooks:hunter2@db.example/bchooks"
    assert "hunter2" not in repr(config) and "hunter2" not in config.describe()
    assert "postgresql://bchooks@db.example/bchooks" in config.describe()
    assert "hunter2" in config.secret_values()  # (redacted from handler errors)
    with pytest.raises(ConfigError, match="SQLite file or a postgresql:// URL"):
        Config.load(env={"BCHOOKS_DB": "mysql://bchooks@db.example/bchooks"})
    with pytest.raises(ConfigError, match="names a server and database"):
        Config.load(db="postgresql://")


def test_notification_urls_and_their_passwords_are_secrets_from_the_moment_they_are_loaded():
    from bchooks.secrecy import redact
    config = Config.load(env={"BCHOOKS_NOTIFY_URLS": "mailtos://me:pa%24%24word@smtp.example.com, ntfy://tok3n-xyz@ntfy.sh/t"})
    assert "pa$$word" not in repr(config) and "tok3n" not in repr(config)
    said = redact("smtp said: auth failed for me with pa$$word (ntfy://tok3n-xyz@ntfy.sh/t)")
    assert "pa$$word" not in said and "tok3n-xyz" not in said
