"""The command line's choices are the registries' names: a dataset, protocol, CAM method or
export format joins the CLI by registering, and one spelling serves every command."""

from __future__ import annotations

import pytest

from breastcam.cli import build_parser


def _choices(command: str, option: str) -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    action = next(a for a in sub._actions if option in a.option_strings or a.dest == option)
    return list(action.choices)


def test_choices_match_the_registries():
    from breastcam.data.loaders import DATASETS
    from breastcam.data.official import PROTOCOL
    from breastcam.data.splits import PROTOCOLS
    from breastcam.explain.registry import METHODS
    from breastcam.runs.files import EXPORT_FORMATS

    assert _choices("manifest", "dataset") == list(DATASETS)
    assert _choices("synth", "--like") == [d for d in DATASETS if d != "folder"]
    assert _choices("split", "--protocol") == [*PROTOCOLS, PROTOCOL]
    assert _choices("explain", "--method") == list(METHODS)
    assert _choices("export", "--format") == list(EXPORT_FORMATS)


def test_one_spelling_of_what_a_patient_is():
    from breastcam.data.splits import PATIENT_FROM

    assert _choices("manifest", "--patient-from") == _choices("split", "--patient-from") == list(PATIENT_FROM)


@pytest.mark.parametrize("argv", [["split", "m.csv", "--protocol", "dalla", "--out", "x.csv"],
                                  ["split", "m.csv", "--protocol", "dala", "--patient-from", "number", "--out", "x"]])
def test_a_value_outside_the_registry_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
