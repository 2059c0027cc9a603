"""Scenario files (design.md, schema v1): the one place that validates user input.

``load(path, overrides)`` reads YAML, applies ``--set key=value`` overrides, checks the schema
(JSON Schema: types, ranges, unknown keys), fills defaults and checks the physics (|m| <= j, memory),
and returns a ``Scenario`` whose ``points`` are the resolved parameter sets of the sweep.
Every problem raises ``ScenarioError`` with one line naming the key path and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from .dicke import OBSERVABLES

SCHEMA_VERSION = 1


class ScenarioError(ValueError):
    """Bad scenario input; the message is one line for the user."""


def _number(minimum=None, exclusive=False, description="", nullable=False):
    spec = {"type": ["number", "null"] if nullable else "number", "description": description}
    if minimum is not None:
        spec["exclusiveMinimum" if exclusive else "minimum"] = minimum
    return spec


def _obj(properties: dict, required=()):
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": list(required)}


SCHEMA = _obj(
    {
        "name": {"type": "string", "minLength": 1, "description": "a name for the run"},
        "model": _obj(
            {
                "N": {"type": "integer", "minimum": 1, "description": "an integer >= 1"},
                "r": _number(description="a real squeezing parameter"),
                "Gamma": _number(0, description="a rate >= 0"),
                "gamma_coll": _number(0, description="a rate >= 0"),
                "gamma_phi": _number(0, description="a rate >= 0"),
                "gamma_rel": _number(0, description="a rate >= 0"),
                "chi": _number(description="a one-axis-twisting rate chi (S^2 - Sz^2), Eq. (G1)"),
            },
            required=["N"],
        ),
        "initial_state": _obj(
            {
                "kind": {"enum": ["dicke", "css", "steady"], "description": "dicke, css or steady"},
                "j": _number(0, description="a spin j in 0..N/2, N/2 - j an integer", nullable=True),
                "m": _number(description="a half-integer m with |m| <= j", nullable=True),
                "theta": _number(description="a polar angle in radians"),
                "phi": _number(description="an azimuth in radians"),
            }
        ),
        "loss": _obj(
            {
                "rate_per_spin": _number(0, description="a rate >= 0"),
                "times": {"type": "array", "items": _number(0, description="times >= 0"),
                          "description": "a list of times >= 0"},
            }
        ),
        "time": _obj(
            {
                "t_end": _number(0, True, "a time > 0"),
                "n_samples": {"type": "integer", "minimum": 2, "description": "an integer >= 2"},
            },
            required=["t_end"],
        ),
        "run": _obj(
            {
                "trajectories": {"type": "integer", "minimum": 1, "description": "an integer >= 1"},
                "seed": {"type": "integer", "minimum": 0, "description": "an integer >= 0"},
                "store": {"enum": ["summary", "trajectories"],
                          "description": "summary or trajectories"},
                "unit_size": {"type": "integer", "minimum": 1,
                              "description": "an integer >= 1 (trajectories per work unit)"},
                "target_sem": {
                    "anyOf": [{"type": "null"}, _obj(
                        {"observable": {"enum": list(OBSERVABLES)},
                         "value": _number(0, True, "a standard error > 0")},
                        required=["observable", "value"])],
                    "description": "null or {observable: one of "
                                   + ", ".join(OBSERVABLES) + ", value: > 0}"},
            }
        ),
        "measurement": _obj(
            {"shots": {"type": "integer", "minimum": 0, "description": "an integer >= 0"}}
        ),
        "detection": _obj(
            {
                "threshold": {"anyOf": [{"const": "auto"}, _number(0, True)],
                              "description": "auto or a number > 0"},
                "hold": _number(0, description="a time >= 0"),
                "smooth": _number(0, description="a time >= 0 (moving-average width)"),
                "window": _number(0, True, "a time > 0 (allowed detection delay)"),
                "settle": _number(0, description="a time >= 0 (excluded after each loss)"),
            }
        ),
        "sweep": {"type": "object", "additionalProperties": {"type": "array", "minItems": 1},
                  "description": "a mapping of key paths to non-empty lists"},
    },
    required=["model", "time"],
)

DEFAULTS = {
    "model": {"r": 0.0, "Gamma": 1.0, "gamma_coll": 0.0, "gamma_phi": 0.0, "gamma_rel": 0.0,
              "chi": 0.0},
    "initial_state": {"kind": "dicke", "j": None, "m": None, "theta": math.pi, "phi": 0.0},
    "loss": {"rate_per_spin": 0.0, "times": []},
    "time": {"n_samples": 101},
    "run": {"trajectories": 100, "seed": 0, "store": "trajectories", "unit_size": 16,
            "target_sem": None},
    "measurement": {"shots": 0},
    "detection": {"threshold": "auto", "hold": 0.5, "smooth": 0.0, "window": 3.0, "settle": 3.0},
    "sweep": {},
}

#: Keys added to schema v1 after it shipped: at these values they are left out of the scenario
#: hash, so run directories written before them still resume.
NEUTRAL_DEFAULTS = {"model": {"chi": 0.0}}

#: Largest share of physical memory the blocks of one point may take.
MEMORY_SHARE = 0.25


@dataclass
class Scenario:
    """A resolved scenario: ``resolved`` (defaults filled, sweep kept) and its sweep ``points``."""

    resolved: dict
    points: list[dict]
    swept: dict

    @property
    def name(self) -> str:
        return self.resolved["name"]

    def hash(self) -> str:
        """SHA-256 of the resolved scenario, to recognise a run directory on --resume."""
        hashed = copy.deepcopy(self.resolved)
        for section, values in NEUTRAL_DEFAULTS.items():
            for key, value in values.items():
                if hashed[section].get(key) == value and f"{section}.{key}" not in hashed["sweep"]:
                    del hashed[section][key]
        text = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _path(parts) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _schema_at(parts) -> dict:
    node = SCHEMA
    for p in parts:
        if isinstance(p, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(p, {})
    return node


def _explain(error: jsonschema.ValidationError) -> str:
    """One line for the most specific schema violation."""
    parts = list(error.absolute_path)
    if error.validator == "additionalProperties" and "properties" in error.schema:
        allowed = list(error.schema["properties"])
        unknown = [k for k in error.instance if k not in allowed]
        key = unknown[0]
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        return (f"{_path(parts + [key])}: unknown key{suggestion} "
                f"(allowed keys: {', '.join(allowed)})")
    if error.validator == "required":
        return f"{_path(parts)}: {error.message}"
    description = _schema_at(parts).get("description", "")
    shown = json.dumps(error.instance) if not isinstance(error.instance, (dict, list)) else "value"
    return f"{_path(parts)}: {shown} is not allowed; expected {description or error.message}"


def _non_finite(node, parts=()):
    if isinstance(node, float) and not math.isfinite(node):
        return parts
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found = _non_finite(value, parts + (key,))
        if found is not None:
            return found
    return None


def check_schema(raw) -> None:
    if not isinstance(raw, dict):
        raise ScenarioError("the scenario must be a YAML mapping with model:, time:, ... sections")
    bad = _non_finite(raw)
    if bad is not None:
        raise ScenarioError(f"{_path(bad)}: NaN or infinity is not allowed; give a finite number")
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(raw),
                    key=lambda e: (-len(list(e.absolute_path)), str(list(e.absolute_path))))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ScenarioError(_explain(best))


def _with_defaults(raw: dict) -> dict:
    out = copy.deepcopy(raw)
    for section, values in DEFAULTS.items():
        if isinstance(values, dict) and section != "sweep":
            out[section] = {**values, **out.get(section, {})}
        else:
            out.setdefault(section, copy.deepcopy(values))
    return out


def _set(tree: dict, dotted: str, value) -> None:
    *head, leaf = dotted.split(".")
    node = tree
    for key in head:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ScenarioError(f"{dotted}: '{key}' is not a section")
    node[leaf] = value


def _sweepable_keys() -> list[str]:
    keys = []
    for section, node in SCHEMA["properties"].items():
        for key in node.get("properties", {}):
            if section not in ("run", "sweep"):
                keys.append(f"{section}.{key}")
    return keys


def _check_point(point: dict, label: str) -> None:
    """Physics checks the schema cannot express."""
    model, init = point["model"], point["initial_state"]
    N = model["N"]
    two_j = N if init["j"] is None else 2 * init["j"]
    if two_j != int(two_j) or two_j > N or (N - int(two_j)) % 2:
        raise ScenarioError(f"{label}initial_state.j: {init['j']} is not a spin of {N} spins; "
                            f"allowed j = N/2, N/2 - 1, ... >= 0 (N/2 = {N / 2:g})")
    if init["m"] is not None:
        two_m = 2 * init["m"]
        if two_m != int(two_m) or abs(two_m) > two_j or (int(two_j) - int(two_m)) % 2:
            raise ScenarioError(f"{label}initial_state.m: {init['m']} is not allowed for "
                                f"j = {two_j / 2:g}; use m in -j, -j+1, ..., j")
    if init["kind"] != "dicke" and (init["m"] is not None or init["j"] is not None):
        raise ScenarioError(f"{label}initial_state: j and m apply to kind 'dicke' only")
    if model["chi"] != 0 and model["Gamma"] * math.sinh(2 * model["r"]) != 0:
        raise ScenarioError(f"{label}model.chi: one-axis twisting (App. G) runs with a diagonal "
                            f"no-jump generator; set model.Gamma to 0 or model.r to 0")
    if len(point["loss"]["times"]) > N:
        raise ScenarioError(f"{label}loss.times: {len(point['loss']['times'])} scripted losses "
                            f"but only N = {N} spins")
    needed = _block_bytes(N)
    budget = MEMORY_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > budget:
        raise ScenarioError(f"{label}model.N: N = {N} needs about {needed / 2**30:.0f} GiB per block "
                            f"(memory grows as N^2); at most {budget / 2**30:.0f} GiB is available")


def _block_bytes(N: int) -> float:
    """Memory of the largest block and its loss neighbours: V and two channel matrices."""
    return 3 * 3 * 8 * (N + 1) ** 2 / 2


def resolve(raw, name: str = "scenario") -> Scenario:
    """Validate a raw scenario mapping and expand its sweep."""
    check_schema(raw)
    resolved = _with_defaults(raw)
    resolved.setdefault("name", name)
    sweepable = _sweepable_keys()
    for key in resolved["sweep"]:
        if key not in sweepable:
            hint = difflib.get_close_matches(key, sweepable, n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ScenarioError(f"sweep.{key}: not a sweepable key{suggestion} "
                                f"(sweepable: {', '.join(sweepable)})")
    keys = list(resolved["sweep"])
    points = []
    for index, combo in enumerate(itertools.product(*resolved["sweep"].values())):
        point = copy.deepcopy(resolved)
        del point["sweep"]
        for key, value in zip(keys, combo):
            _set(point, key, value)
        label = f"sweep point {index} ({', '.join(f'{k}={v}' for k, v in zip(keys, combo))}): "
        try:
            check_schema(point)
        except ScenarioError as err:
            raise ScenarioError(f"{label if keys else ''}{err}") from None
        _check_point(point, label if keys else "")
        points.append(point)
    return Scenario(resolved, points, dict(resolved["sweep"]))


def parse_override(text: str) -> tuple[str, object]:
    """'model.r=2.0' -> ('model.r', 2.0); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ScenarioError(f"--set {text}: expected KEY=VALUE, e.g. --set model.r=2.0")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise ScenarioError(f"--set {text}: the value is not valid YAML") from None


def load(path, overrides=()) -> Scenario:
    """Read, override, validate and resolve a scenario file."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ScenarioError(f"{path}: not valid YAML{where}") from None
    if raw is None:
        raise ScenarioError(f"{path}: the file is empty; see scenarios/quickstart.yaml")
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a YAML mapping with model:, time:, ... sections")
    for key, value in overrides:
        _set(raw, key, value)
    return resolve(raw, name=path.stem)
