"""Bad input at scale: generated study documents, files and --set items through the study-file loader.

Any YAML document (any keys, types and values, a `base:` chain, bytes that are not text) either loads
as a study whose every part builds (step configs at every range end, the sampler and pruner through a
short Optuna study) or fails with the project's one-line error naming the file and the key; never
another exception, and never later, mid-study.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, get_args

import optuna
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ecg_mlflow.errors import UserError
from ecg_mlflow.params import parameter_defaults
from ecg_mlflow.transforms import TRANSFORM_NAMES
from ecg_mlflow.tuning.algorithms import Pruner, Sampler
from ecg_mlflow.tuning.names import KINDS, STEP_CONFIGS, STEP_ORDERS, split_key
from ecg_mlflow.tuning.spec import StudySpec, parse_study
from ecg_mlflow.tuning.study_files import load_study_file, parse_set

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOURCE = "gen.yaml"
STUDY_KEYS = ("name", "description", "steps", "objective", "sampler", "pruner", "fixed", "search_space")
# How an error message may start after "<source>: ": a key of the document, or the part that was checked.
CHECKED_PARTS = ("fixed", "search_space", "--set", "study", "the file is empty", "expected a mapping")

# What YAML (safe_load) can hand over: scalars (dates and bytes too), lists and mappings with any scalar keys.
yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    st.dates(),
    st.binary(max_size=4),
)
yaml_keys = st.one_of(st.text(max_size=10), st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False))
yaml_values = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(yaml_keys, children, max_size=4)),
    max_leaves=10,
)

# Parameter names as a study writes them: flat, scoped to a step, one head weight, or a typo.
flat_names = st.sampled_from(sorted(KINDS))
parameter_keys = st.one_of(
    flat_names,
    st.tuples(st.sampled_from(["pretrain", "transfer", "evaluate"]), flat_names).map(".".join),
    st.sampled_from(TRANSFORM_NAMES).map(lambda t: f"head_weights.{t}"),
    st.sampled_from(["epochz", "units.noise", "transfer.", ".epochs", "head_weights.rotation"]),
    st.text(max_size=8),
)
numbers = st.one_of(
    st.integers(-3, 300),
    st.floats(-1.0, 300.0),
    st.sampled_from([0, 1, 2, 1e-4, 0.5, 2**63, float("inf"), float("nan"), "1e-3", "20.0", "auto", True]),
)
fixed_values = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.sampled_from(["cnn", "mlp", "lstm", "resnet", "mit", "ptb", "kachuee", "window", "rr", "none", "1,2,3", ""]),
    st.text(max_size=6),
    st.lists(st.floats(0.0, 4.0), max_size=9),
)
search_params = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["float", "int"])},
        optional={
            "low": numbers,
            "high": numbers,
            "step": numbers,
            "log": st.booleans(),
            "per_transform": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("categorical"), "choices": st.lists(fixed_values, max_size=4)},
        optional={"per_transform": st.booleans()},
    ),
    st.lists(fixed_values, min_size=1, max_size=4),
    st.fixed_dictionaries({"type": st.sampled_from(["loguniform", "", None])}),
    yaml_values,
)
small_ints = st.one_of(st.integers(-2, 12), st.sampled_from(["auto", 2.5, None, True, "3"]))
# Each option's own value strategy; an option is drawn for its type mostly, and any option sometimes.
OPTION_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "seed": st.one_of(st.integers(), st.text(max_size=3)),
    "multivariate": st.one_of(st.booleans(), st.none(), st.text(max_size=3)),
    "constant_liar": st.booleans(),
    "group": st.booleans(),
    "percentile": st.one_of(st.floats(-10.0, 110.0), st.none()),
    "lower": st.one_of(st.floats(-1.0, 1.0), st.none()),
    "upper": st.one_of(st.floats(-1.0, 1.0), st.none()),
}


def algorithm_sections(union: Any, default: str) -> st.SearchStrategy[Any]:
    """`sampler:` / `pruner:` sections: a type with some of its own options (valid or not), maybe one
    other option, maybe no type at all (the default type), or any YAML value."""
    models = {m.model_fields["type"].annotation.__args__[0]: m for m in get_args(get_args(union)[0])}
    every_option = sorted({name for m in models.values() for name in m.model_fields} - {"type"})

    def section(kind: str) -> st.SearchStrategy[dict]:
        own = [name for name in models[kind].model_fields if name != "type"]
        return (
            st.fixed_dictionaries(
                {"type": st.sampled_from([kind, kind, kind, None]) if kind == default else st.just(kind)},
                optional={name: OPTION_VALUES.get(name, small_ints) for name in own},
            )
            .flatmap(
                lambda options: st.one_of(
                    st.just(options),
                    st.sampled_from(every_option).flatmap(
                        lambda name: OPTION_VALUES.get(name, small_ints).map(lambda value: {**options, name: value})
                    ),
                )
            )
            .map(lambda options: {k: v for k, v in options.items() if not (k == "type" and v is None)})
        )

    return st.one_of(st.none(), st.sampled_from(sorted(models)).flatmap(section), yaml_values)


samplers = algorithm_sections(Sampler, "tpe")
pruners = algorithm_sections(Pruner, "median")
objectives = st.one_of(
    st.sampled_from(["best_val_macro_f1", "val_accuracy", "test_macro_f1", "macro_f1"]),
    st.fixed_dictionaries(
        {},
        optional={
            "metric": st.sampled_from(["best_val_macro_f1", "best_val_test", "val_loss", "f1"]),
            "monitor": st.sampled_from(["val_macro_f1", "val_loss", "best_val_macro_f1", "loss"]),
            "direction": st.sampled_from(["maximize", "minimize", "up"]),
        },
    ),
    yaml_values,
)
study_documents = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(["cnn", "my-study.v2", "", "-x", "a b"]), st.text(max_size=8)),
        "description": st.one_of(st.text(max_size=10), yaml_values),
        "steps": st.one_of(
            st.sampled_from([["transfer"], ["pretrain", "transfer"], ["pretrain"], "transfer", [], None, 5]),
            yaml_values,
        ),
        "objective": objectives,
        "sampler": samplers,
        "pruner": pruners,
        "fixed": st.one_of(st.dictionaries(parameter_keys, fixed_values, max_size=4), yaml_values),
        "search_space": st.one_of(st.dictionaries(parameter_keys, search_params, max_size=3), yaml_values),
        "extra": yaml_values,
    },
)
# Studies close to the shipped ones: a known step order, fixed values and ranges of each parameter's kind
# around its default, sometimes scoped to a step, sometimes out of range: many load, many fail late.
DEFAULTS: dict[str, tuple[str, Any]] = {
    name: kind_default for cls in STEP_CONFIGS.values() for name, kind_default in parameter_defaults(cls).items()
}
TEXT_CHOICES = ["cnn", "mlp", "lstm", "resnet", "mit", "ptb", "kachuee", "window", "rr", "rr_template", "none", "1,2"]


def value_of_kind(name: str) -> st.SearchStrategy[Any]:
    kind, default = DEFAULTS[name]
    if kind == "int":
        return st.one_of(st.just(default), st.integers(-1, 64))
    if kind == "float":
        return st.one_of(st.just(default), st.floats(0.0, 1.0), st.floats(1e-5, 10.0))
    if kind == "bool":
        return st.booleans()
    return st.one_of(st.just(default), st.sampled_from(TEXT_CHOICES))


def range_of_kind(name: str) -> st.SearchStrategy[Any]:
    """A search-space entry for `name`: a range of its kind (ends maybe swapped, log, step) or choices."""
    kind = DEFAULTS[name][0]
    choices = st.lists(value_of_kind(name), min_size=1, max_size=3, unique_by=repr)
    if kind not in ("int", "float"):
        return st.one_of(choices, choices.map(lambda c: {"type": "categorical", "choices": c}))
    number = st.integers(0, 64) if kind == "int" else st.floats(0.0, 2.0)
    ends = st.tuples(number, number.filter(bool), st.integers(0, 5)).map(
        lambda t: (t[0], t[0] + t[1]) if t[2] else (t[0] + t[1], t[0])  # now and then swapped
    )
    return st.one_of(
        choices,
        st.tuples(
            ends,
            st.fixed_dictionaries(
                {"type": st.sampled_from([kind, kind, "float", "int"])}, optional={"log": st.booleans(), "step": number}
            ),
        ).map(lambda t: {**t[1], "low": t[0][0], "high": t[0][1]}),
    )


PER_TRANSFORM_WEIGHTS = {"type": "float", "low": 0.25, "high": 4.0, "log": True, "per_transform": True}


@st.composite
def plausible_studies(draw: st.DrawFn) -> dict:
    """A study close to the shipped ones: a known step order, fixed values and searched ranges of each
    parameter's kind (sometimes scoped to a step, out of range or of another kind)."""
    names = st.tuples(st.sampled_from(["", "", "pretrain.", "transfer."]), st.sampled_from(sorted(DEFAULTS)))
    fixed = {scope + name: draw(value_of_kind(name)) for scope, name in draw(st.lists(names, max_size=3))}
    space = {scope + name: draw(range_of_kind(name)) for scope, name in draw(st.lists(names, min_size=1, max_size=3))}
    if "head_weights" in space and draw(st.booleans()):
        space["head_weights"] = PER_TRANSFORM_WEIGHTS
    raw = {"steps": draw(st.sampled_from([["transfer"], ["pretrain", "transfer"]])), "fixed": fixed}
    raw["search_space"] = space
    for key, section in (("sampler", samplers), ("pruner", pruners), ("objective", objectives)):
        if draw(st.integers(0, 3)) == 3:
            raw[key] = draw(section)
    return raw


key_values = st.tuples(
    parameter_keys, st.one_of(st.text(max_size=8), st.sampled_from(["1", "0.5", "true", "null", "[1, 2]", "{a: 1}"]))
).map("=".join)
set_items = st.one_of(key_values, st.text(max_size=12))


def assert_one_line_error(error: BaseException, source: str, raw: Any = None) -> None:
    """The project's error: a UserError, one line, `<source>: <the key or part>: what is wrong`."""
    assert isinstance(error, UserError), f"{type(error).__name__} instead of a UserError: {error}"
    message = str(error)
    assert "\n" not in message, repr(message)
    assert message.startswith(f"{source}: ") and message.removeprefix(f"{source}: ").strip(), message
    rest = message.removeprefix(f"{source}: ")
    if isinstance(raw, dict):
        names = tuple(str(key) for key in raw) + tuple(repr(key) for key in raw) + CHECKED_PARTS
        assert rest.startswith(names), message
    event(f"refused: {re.sub(r'[^a-z_ -].*', '', rest)[:30]}")


def assert_valid_study(spec: StudySpec) -> None:
    """A loaded study: a known step order, validation metrics, configs that build for the fixed values and
    at every range end, and a normalised form that loads back to itself."""
    assert isinstance(spec, StudySpec) and spec.steps in STEP_ORDERS
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", spec.name)
    assert spec.metric.startswith(("val_", "best_val_")) and "test" not in spec.metric
    assert spec.monitor.startswith("val_") and "test" not in spec.monitor
    configs = spec.configs({})
    assert set(configs) == set(spec.steps)
    assert all(isinstance(configs[step], STEP_CONFIGS[step]) for step in spec.steps)
    for key, param in spec.search_space.items():
        split_key(key, spec.steps)
        assert not param.per_transform and key not in spec.fixed
        for value in param.ends():
            spec.configs({key: value})
    again = parse_study(spec.to_dict(), source=spec.path, default_name=spec.name)
    assert again.to_dict() == spec.to_dict()
    event(f"loaded: {len(spec.fixed)} fixed, {len(spec.search_space)} searched")


@SETTINGS
@given(raw=yaml_values)
@example(raw={"steps": 5})  # was a TypeError
@example(raw={False: None})  # was named "0"
@example(raw={"\n": None})  # was a message on two lines
def test_any_yaml_value_is_a_valid_study_or_one_line(raw: Any) -> None:
    """parse_study on any value YAML can produce: a valid study, or one line naming the source and key."""
    try:
        spec = parse_study(raw, source=SOURCE)
    except Exception as error:  # the property: which exceptions escape
        assert_one_line_error(error, SOURCE, raw)
        return
    assert_valid_study(spec)


@SETTINGS
@given(raw=st.one_of(study_documents, plausible_studies()), items=st.lists(key_values, max_size=2))
def test_generated_study_documents_with_set_overrides_load_or_fail_naming_the_key(raw: dict, items: list) -> None:
    """Study documents of the schema's keys with random shapes, types and values, plus --set items:
    a study whose every part builds, or one line naming the key."""
    try:
        overrides = parse_set(items)
    except Exception as error:  # the property: which exceptions escape
        assert isinstance(error, UserError) and str(error).startswith("--set "), repr(error)
        return
    try:
        spec = parse_study(raw, source=SOURCE, overrides=overrides)
    except Exception as error:  # the property: which exceptions escape
        assert_one_line_error(error, SOURCE, raw)
        return
    assert_valid_study(spec)
    if items:  # --set wins: it is fixed, and no longer searched
        key = items[-1].partition("=")[0].strip()
        assert key in spec.fixed and key not in spec.search_space


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sampler=samplers, pruner=pruners)
@example(sampler=None, pruner={"type": "hyperband", "min_resource": 0})  # was a ZeroDivisionError in the 1st trial
@example(sampler=None, pruner={"type": "hyperband", "reduction_factor": 1})  # likewise
@example(sampler={"group": True, "multivariate": False}, pruner=None)  # was a ValueError at study start
def test_a_loaded_sampler_and_pruner_run_a_study_without_failing_mid_way(sampler: Any, pruner: Any) -> None:
    """A sampler and pruner the loader accepts build and prune a short Optuna study (intermediate values
    reported every step) without an error; the loader's checks are the only ones, not the first trial's."""
    raw = {"sampler": sampler, "pruner": pruner}
    try:
        spec = parse_study(raw, source=SOURCE)
    except Exception as error:  # the property: which exceptions escape
        assert_one_line_error(error, SOURCE, raw)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=spec.sampler.build(), pruner=spec.pruner.build(), direction=spec.direction)
        for number in range(5):
            study.sampler = spec.sampler.build(seed_offset=number)
            trial = study.ask()
            x = trial.suggest_float("x", 0.0, 1.0)
            pruned = False
            for step in range(6):
                trial.report(x * (step + 1), step)
                if trial.should_prune():
                    pruned = True
                    break
            if pruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, x)
    event(f"ran: {spec.sampler.type} + {spec.pruner.type}")


file_contents = st.one_of(
    study_documents.map(lambda raw: yaml.safe_dump(raw, allow_unicode=True).encode()),
    yaml_values.map(lambda raw: yaml.safe_dump(raw).encode()),
    st.text(max_size=40).map(str.encode),
    st.binary(max_size=40),
    st.sampled_from([b"", b"\xff\xfe name: x\n", b"[" * 600, b"name: [\n", b"steps: transfer\n\tfixed: 1\n"]),
)
bases = st.one_of(
    st.none(),
    st.sampled_from(["base.yaml", "main.yaml", "missing.yaml", ".", "sub", "x" * 300, "list.yaml", "bad.yaml"]),
    st.sampled_from(["a\x00b", "two\nlines.yaml", " ", "sub/../main.yaml", "sub/../base.yaml"]),
    yaml_values,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=file_contents, base=bases, base_content=file_contents)
@example(content=b"name: [\n", base=None, base_content=b"")  # PyYAML's message was several lines
@example(content=b"\xff\xfe name: x\n", base=None, base_content=b"")  # was a UnicodeDecodeError
@example(content=b"[" * 600, base=None, base_content=b"")  # was a RecursionError
@example(content=b"fixed: true\n", base="base.yaml", base_content=b"fixed: {epochs: 1}\n")  # was a TypeError
@example(content=b"", base="x" * 300, base_content=b"")  # was an OSError (file name too long)
def test_any_study_file_with_any_base_chain_loads_or_fails_naming_the_file(
    content: bytes, base: Any, base_content: bytes
) -> None:
    """load_study_file on generated bytes, with `base:` pointing anywhere (itself, a folder, a list, a
    missing, unreadable or non-UTF-8 file): a valid study, or one line naming a file of the chain."""
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        (directory / "sub").mkdir()
        (directory / "base.yaml").write_bytes(base_content)
        (directory / "list.yaml").write_text("- 1\n- 2\n")
        (directory / "bad.yaml").write_bytes(b"\x80\x81 fixed: {}\n")
        path = directory / "main.yaml"
        if base is not None:
            content = yaml.safe_dump({"base": base}).encode() + b"\n" + content
        path.write_bytes(content)
        try:
            spec = load_study_file(path)
        except Exception as error:  # the property: which exceptions escape
            assert isinstance(error, UserError), f"{type(error).__name__} instead of a UserError: {error}"
            message = str(error)
            assert "\n" not in message and folder in message, message
            event(f"refused: {re.sub(r'/[^ :]*', '', message)[:30]}")
            return
    assert_valid_study(spec)
    assert spec.path == str(path)


@SETTINGS
@given(items=st.lists(set_items, max_size=3))
def test_any_set_item_parses_to_a_scalar_or_fails_naming_it(items: list[str]) -> None:
    """parse_set on any strings: {key: a YAML scalar (lists joined by commas)}, or one line naming the item."""
    try:
        parsed = parse_set(items)
    except Exception as error:  # the property: which exceptions escape
        assert isinstance(error, UserError), f"{type(error).__name__} instead of a UserError: {error}"
        assert "\n" not in str(error) and str(error).startswith("--set "), str(error)
        return
    assert set(parsed) == {item.partition("=")[0].strip() for item in items}
    assert all(isinstance(value, bool | int | float | str) for value in parsed.values())
