"""The TOML config: defaults it sets, and messages that name the file, key, value and what is allowed."""

import json

import pytest

from repl import cli
from repl.core.session import Session
from repl.store import config, paths
from repl.store.config import ConfigError
from repl.testing.fixtures import builtin_host


def write_config(text, path=None):
    path = path or paths.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_no_config_file_means_defaults():
    loaded = config.load()
    assert loaded == config.Config()
    assert loaded.path is None


def test_the_example_is_a_valid_config():
    path = write_config(config.EXAMPLE)
    loaded = config.load()
    assert loaded.path == path
    assert (loaded.default_model, loaded.device, loaded.stream, loaded.log) == ("mt0", "auto", True, True)
    assert loaded.models == {"gpt2": {"checkpoint": "openai-community/gpt2", "max_new_tokens": 40}}


@pytest.mark.parametrize(
    "text, expected",
    [
        ('device = "gpu"', ["device = 'gpu'", "auto, cpu, cuda, mps"]),
        ('dtype = "int4"', ["dtype = 'int4'", "auto, float32, float16, bfloat16"]),
        ("history_size = -5", ["history_size = -5", "from 0 to 1000000"]),
        ('stream = "yes"', ["stream = 'yes'", "true or false"]),
        ("log = 1", ["log = 1", "true or false"]),
        ('colour = "red"', ["unknown key 'colour'", "allowed: default_model"]),
        ("models = 3", ["models = 3", "[models.NAME] tables"]),
        ('[models.gpt2]\ncheckpoint = ""', ["models.gpt2.checkpoint = ''", "hub id or directory"]),
        ("stream = true\ndevice = \n", ["not valid TOML", "line 2"]),
    ],
)
def test_an_invalid_value_is_named_with_its_file_and_what_is_allowed(text, expected):
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        config.load()
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for fragment in expected:
        assert fragment in message
    assert "\n" not in message


def test_a_named_config_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "missing.toml")


def test_model_settings_are_checked_all_before_any_is_applied(tmp_path):
    path = write_config("[models.gpt2]\nmax_new_tokens = 7\n\n[models.mt0]\ntemperature = -1\n", tmp_path / "c.toml")
    session = Session(builtin_host())
    with pytest.raises(ConfigError) as caught:
        config.apply_model_settings(config.load(path), session)
    assert str(caught.value).startswith(f"{path}: models.mt0.temperature = -1 is not allowed")
    assert "from 0 to 100" in str(caught.value)
    assert session.settings_of("gpt2")["max_new_tokens"] == 64
    assert session.settings_of("mt0")["temperature"] == 1.0


def test_model_settings_and_checkpoints_apply_when_all_are_valid(tmp_path):
    path = write_config(
        '[models.gpt2]\ncheckpoint = "/models/gpt2"\nmax_new_tokens = 7\ndo_sample = true\nseed = 3\n',
        tmp_path / "c.toml",
    )
    session = Session(builtin_host())
    config.apply_model_settings(config.load(path), session)
    values = session.settings_of("gpt2")
    assert (values["max_new_tokens"], values["do_sample"], values["seed"]) == (7, True, 3)
    assert session.checkpoint_of("gpt2") == "/models/gpt2"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[models.gtp2]\nmax_new_tokens = 7", "[models.gtp2]: no such model; registered: "),
        (
            "[models.bert]\nmax_new_tokens = 7",
            "models.bert.max_new_tokens = 7 is not allowed: 'max_new_tokens' does not apply to bert",
        ),
        (
            '[models.gpt2]\nnum_beams = "many"',
            "models.gpt2.num_beams = 'many' is not allowed: num_beams takes a whole number",
        ),
    ],
)
def test_a_model_table_that_does_not_fit_the_models_is_refused(tmp_path, text, expected):
    path = write_config(text, tmp_path / "c.toml")
    with pytest.raises(ConfigError) as caught:
        config.apply_model_settings(config.load(path), Session(builtin_host()))
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)


def test_a_bad_config_stops_modelrepl_before_anything_runs(tmp_path, capsys):
    path = write_config('default_model = "gtp2"\n', tmp_path / "c.toml")
    assert cli.main(["--config", str(path), "-e", "Hello"]) == cli.EXIT_USAGE
    error = capsys.readouterr().err
    assert error.startswith(f"error: {path}: default_model = 'gtp2' is not allowed; it takes a registered model: ")
    assert "gpt2" in error and error.count("\n") == 1
    assert not paths.transcript_file().exists()


def test_the_config_sets_model_checkpoint_device_settings_and_streaming(tiny_checkpoints, capsys):
    write_config(
        'default_model = "gpt2"\ndevice = "cpu"\ndtype = "float32"\nstream = false\n\n'
        f'[models.gpt2]\ncheckpoint = "{tiny_checkpoints["gpt2"]}"\nmax_new_tokens = 3\ndo_sample = true\nseed = 11\n'
    )
    args = cli.build_parser().parse_args([])
    session = cli.build_session(args, config.load())
    assert (session.options.device, session.options.dtype) == ("cpu", "float32")
    assert cli.main(["--json", "-e", "Hello"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (record["model"], record["checkpoint"]) == ("gpt2", str(tiny_checkpoints["gpt2"]))
    assert record["stats"]["new_tokens"] <= 3
    (logged,) = [json.loads(line) for line in paths.transcript_file().read_text().splitlines()]
    assert (logged["settings"]["max_new_tokens"], logged["settings"]["seed"], logged["settings"]["stream"]) == (
        3,
        11,
        False,
    )


def test_config_path_and_show(tmp_path, capsys):
    assert cli.main(["config", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(paths.config_file())
    path = write_config('device = "cpu"\nhistory_size = 50\n\n[models.gpt2]\nmax_new_tokens = 9\n', tmp_path / "c.toml")
    assert cli.main(["--config", str(path), "config", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    assert cli.main(["--config", str(path), "config", "show"]) == 0
    shown = capsys.readouterr().out
    assert f"# {path}" in shown and 'device = "cpu"' in shown and "history_size = 50" in shown
    assert "[models.gpt2]\nmax_new_tokens = 9" in shown
