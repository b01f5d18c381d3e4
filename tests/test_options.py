"""One home for each training option: every TrainConfig field has help text, a `vaegan train` flag (and a
`vaegan resume` flag unless it is fixed when a run starts) and a Train panel control, all generated from the field
(README, "Developer notes": a new option touches the config and the code that uses it, nothing else)."""
from __future__ import annotations

from dataclasses import fields

from core.api import load_model
from core.cli import SHARED_OPTIONS, START_OPTIONS, build_parser, given_options, option_flag
from core.options import options_of
from core.trainer import TrainConfig
from explorer.selection import Selection
from explorer.training_panel import SHOWN_OPTIONS, TrainingPanel
from test_gui_app import isolated_settings  # noqa: F401 - autouse fixture

NEW_VALUES = {bool: lambda default: not default, int: lambda default: (default or 0) + 3,
              float: lambda default: default * 2 if default else 0.5, str: lambda default: "cutout"}
"""A valid value other than the default, by type (the only str field without its own control is --augment)."""


def flags_of(command: str) -> set[str]:
    parser = build_parser()
    sub = next(action for action in parser._actions if action.dest == "command").choices[command]
    return {flag for action in sub._actions for flag in action.option_strings}


def test_every_training_option_has_help_a_train_flag_and_a_resume_flag():
    options = options_of(TrainConfig)
    assert [option.name for option in options] == [f.name for f in fields(TrainConfig)]
    assert all(option.help for option in options), [option.name for option in options if not option.help]
    train, resume = flags_of("train"), flags_of("resume")
    for option in options:
        assert option_flag(option) in train
        assert (option_flag(option) in resume) == (option.name not in START_OPTIONS)


def test_train_defaults_are_the_configs_and_given_flags_reach_it(tmp_path):
    parse = build_parser().parse_args
    plain = ["train", str(tmp_path), "--out", str(tmp_path / "run")]
    assert TrainConfig(**given_options(parse(plain))) == TrainConfig()
    plain += ["--init-from", "model.safetensors"]   # which --freeze-encoder needs
    changed = {}
    for option in options_of(TrainConfig):
        if option.name not in ("epochs", "init_from") + SHARED_OPTIONS:   # one length; init_from is checked first
            value = NEW_VALUES[option.kind](option.default)
            changed[option.name] = value
            plain += [option_flag(option), ("on" if value else "off") if option.kind is bool else str(value)]
    given = TrainConfig(**given_options(parse(plain)))
    assert {name: getattr(given, name) for name in changed} == changed
    resumed = given_options(parse(["resume", str(tmp_path), "--equilibrium", "off", "--lr", "0.1"]))
    assert resumed == {"equilibrium_rule": False, "lr": 0.1}


def test_every_training_option_has_a_panel_control_that_reaches_the_config(qtbot, tiny_model_path):
    panel = TrainingPanel(Selection())
    qtbot.addWidget(panel)
    panel.selection.set_model(load_model(tiny_model_path, device="cpu"))   # Freeze encoder needs a model to start from
    assert set(panel.option_controls) == {f.name for f in fields(TrainConfig)} - set(SHOWN_OPTIONS)
    start = panel.train_config()
    assert all(getattr(start, name) == option.default for name, (option, _) in panel.option_controls.items())
    unset = [control for option, control in panel.option_controls.values() if option.optional and option.kind is not str]
    assert {type(control).__name__ for control in unset} == {"QSpinBox", "QDoubleSpinBox"}
    assert all(control.text() == "default" for control in unset)   # 0 means: decided elsewhere
    changed = {}
    for name, (option, control) in panel.option_controls.items():
        changed[name] = value = NEW_VALUES[option.kind](option.default)
        getattr(control, {bool: "setChecked", str: "setText"}.get(option.kind, "setValue"))(value)
    config = panel.train_config()
    assert {name: getattr(config, name) for name in changed} == changed
