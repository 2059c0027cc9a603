"""Scenario files (schema v1): the one place that validates user input.

``load(path, overrides)`` reads YAML (YAML 1.2 numbers such as ``1e-3``; duplicate keys,
non-JSON values and documents that expand beyond ``MAX_NODES`` or nest deeper than ``MAX_DEPTH``
are refused), applies ``--set key=value`` overrides (a swept key's override replaces its sweep
axis; ``sweep.KEY=[...]`` sets one), checks the schema (JSON Schema: types, finite ranges, unknown
keys), fills defaults, checks the physics (|m| <= j) and what a run would cost (work units,
memory, expected jumps), and returns a ``Scenario`` whose ``points`` are the resolved parameter
sets of the sweep.  Every problem raises ``ScenarioError`` with one line naming the key path and
what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
import yaml

from . import engines, groups, hybrid
from .cavity import squeezed_reservoir_rates
from .dicke import OBSERVABLES
from .errors import ScenarioError, TrajsimError, printable  # noqa: F401  (re-exported)
from .point import (  # noqa: F401  (measurement_times, time_grid: re-exported)
    DETECTION_DEFAULTS,
    UNIT_SIZE_DEFAULT,
    Point,
    measurement_times,
    sweep_label,
    time_grid,
)

SCHEMA_VERSION = 1


#: S_y measurement instruments (README, "Measurements"): none, a projective S_y measurement, a
#: Gaussian (weak) one of resolution sigma, or k outcomes from k copies without back-action.
INSTRUMENTS = ("none", "projective", "weak", "copies")
#: Models (``model.kind``): the spins of Eq. (2)/(11), or the hybrid implementation of Eq. (9)
#: (engines/hybrid.py) with the keys HYBRID_DEFAULTS, whose Gamma and gamma_coll come from the
#: cavity (Eqs. 12-13) instead of SPIN_ONLY_KEYS.
MODEL_KINDS = ("spin", "hybrid")
HYBRID_DEFAULTS = {"kappa_sqz": 1.0, "kappa_int": 0.0, "Delta_c": 0.0, "n_max": "auto",
                   "cavity_basis": "fock"}
HYBRID_KEYS = ("g",) + tuple(HYBRID_DEFAULTS)
SPIN_ONLY_KEYS = ("Gamma", "gamma_coll", "chi")
#: Simulation engines (``run.engine``): jump trajectories of every Sigma jump, or the record-level
#: engine (engines/record.py); auto takes the record-level one where it is eligible and cheaper.
ENGINES = ("auto", "jumps", "record")
#: Most measurement times one point may schedule.
MAX_MEASUREMENTS = 10**6

#: Bounds on every number, so that no value overflows downstream: rates and 1/times in units
#: of the user's choice, |r| as far as the engine is tested (Casimir and norm at r = 5).
MAX_RATE = 1e6
MAX_TIME = 1e9
MAX_R = 5.0
MAX_N = 10**9
MAX_INT = 2**63 - 1
#: Most classes of identical spins in model.groups (engines/grouped.py).
MAX_GROUPS = 16
#: Keys that model.groups refuses: local rates mix the classes' symmetric blocks, and one-axis
#: twisting is not in the grouped engine (engines/grouped.py).
GROUPED_REFUSED = ("gamma_phi", "gamma_rel", "chi")
#: Largest Fock cut-off of the hybrid model (model.n_max), and its smallest cavity decay.
MAX_N_MAX = 200
MIN_KAPPA = 1e-100
#: Smallest weak-readout resolution: below it the Gaussians of neighbouring S_y eigenvalues
#: (spacing 1) overlap by less than Phi(-50) ~ 1e-545, so the instrument is the projective one.
MIN_SIGMA = 0.01


def _number(minimum=None, exclusive=False, description="", nullable=False, maximum=None):
    spec = {"type": ["number", "null"] if nullable else "number", "description": description}
    if minimum is not None:
        spec["exclusiveMinimum" if exclusive else "minimum"] = minimum
    if maximum is not None:
        spec["maximum"] = maximum
        if minimum is None:
            spec["minimum"] = -maximum
    return spec


def _rate(what="a rate"):
    return _number(0, description=f"{what} from 0 to {MAX_RATE:g}", maximum=MAX_RATE)


def _integer(minimum, maximum, description):
    return {"type": "integer", "minimum": minimum, "maximum": maximum,
            "description": description}


def _obj(properties: dict, required=()):
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": list(required)}


SCHEMA = _obj(
    {
        "name": {"type": "string", "minLength": 1, "maxLength": 200,
                 "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u202a-\\u202e\\u2066-\\u2069]*$",
                 "description": "a name for the run: 1 to 200 printable characters"},
        "model": _obj(
            {
                "N": _integer(1, MAX_N, f"an integer from 1 to {MAX_N}"),
                "r": _number(description=f"a squeezing parameter with |r| <= {MAX_R:g}",
                             maximum=MAX_R),
                "Gamma": _rate(),
                "gamma_coll": _rate(),
                "gamma_phi": _rate(),
                "gamma_rel": _rate(),
                "chi": _number(description="a one-axis-twisting rate chi (S^2 - Sz^2), Eq. (G1), "
                                           f"|chi| <= {MAX_RATE:g}", maximum=MAX_RATE),
                "kind": {"enum": list(MODEL_KINDS),
                         "description": "spin (Eq. 2/11) or hybrid (Eq. 9: spins + cavity + "
                                        "squeezed reservoir)"},
                "g": _rate("a spin-cavity coupling g"),
                "kappa_sqz": _rate("a squeezed-reservoir rate kappa_sqz"),
                "kappa_int": _rate("an internal cavity loss rate kappa_int"),
                "Delta_c": _number(description=f"a cavity detuning with |Delta_c| <= {MAX_RATE:g}",
                                   maximum=MAX_RATE),
                "n_max": {"anyOf": [{"const": "auto"},
                                    _integer(1, MAX_N_MAX, "")],
                          "description": f"auto or a Fock cut-off from 1 to {MAX_N_MAX}"},
                "cavity_basis": {"enum": list(hybrid.BASES),
                                 "description": "fock or reservoir"},
                "groups": {"type": "array", "minItems": 1, "maxItems": MAX_GROUPS,
                           "description": f"a list of 1 to {MAX_GROUPS} classes {{N, delta, "
                                          "weight}",
                           "items": _obj({
                               "N": _integer(1, MAX_N, f"an integer from 1 to {MAX_N}"),
                               "delta": _number(description="a detuning delta_k with |delta_k| "
                                                f"<= {MAX_RATE:g}", maximum=MAX_RATE),
                               "weight": _number(0, True, "a coupling weight w_k > 0 and <= "
                                                 f"{MAX_RATE:g}", maximum=MAX_RATE),
                           }, required=["N"])},
                "broadening": _obj({
                    "distribution": {"enum": list(groups.DISTRIBUTIONS),
                                     "description": "gaussian, lorentzian or uniform"},
                    "width": _number(0, description="a width >= 0 (the gaussian's standard "
                                     "deviation, the lorentzian's half width at half maximum, "
                                     f"the uniform's half width), <= {MAX_RATE:g}",
                                     maximum=MAX_RATE),
                    "groups": _integer(1, MAX_GROUPS, f"a number of classes from 1 to "
                                       f"{MAX_GROUPS}"),
                }, required=["distribution", "width", "groups"]),
            },
        ),
        "initial_state": _obj(
            {
                "kind": {"enum": ["dicke", "css", "steady"], "description": "dicke, css or steady"},
                "j": _number(0, description="a spin j in 0..N/2, N/2 - j an integer",
                             nullable=True, maximum=MAX_N),
                "m": _number(description="a half-integer m with |m| <= j", nullable=True,
                             maximum=MAX_N),
                "theta": _number(description="a polar angle in radians", maximum=1e6),
                "phi": _number(description="an azimuth in radians", maximum=1e6),
            }
        ),
        "loss": _obj(
            {
                "rate_per_spin": _rate(),
                "times": {"type": "array",
                          "items": _number(0, description=f"times from 0 to {MAX_TIME:g}",
                                           maximum=MAX_TIME),
                          "description": "a list of times >= 0"},
            }
        ),
        "time": _obj(
            {
                "t_end": _number(0, True, f"a time > 0 and <= {MAX_TIME:g}", maximum=MAX_TIME),
                "n_samples": _integer(2, MAX_INT, "an integer >= 2"),
            },
            required=["t_end"],
        ),
        "run": _obj(
            {
                "trajectories": _integer(1, MAX_INT, "an integer >= 1"),
                "seed": _integer(0, MAX_INT, f"an integer from 0 to {MAX_INT}"),
                "store": {"enum": ["summary", "trajectories"],
                          "description": "summary or trajectories"},
                "unit_size": {"anyOf": [{"const": "auto"}, _integer(1, MAX_INT, "")],
                              "description": "auto or an integer >= 1 (trajectories per work "
                                             "unit)"},
                "engine": {"enum": list(ENGINES),
                           "description": "auto, jumps or record (the simulation engine)"},
                "target_sem": {
                    "anyOf": [{"type": "null"}, _obj(
                        {"observable": {"enum": list(OBSERVABLES)},
                         "value": _number(0, True, "a standard error > 0", maximum=1e300)},
                        required=["observable", "value"])],
                    "description": "null or {observable: one of "
                                   + ", ".join(OBSERVABLES) + ", value: > 0}"},
            }
        ),
        "measurement": _obj(
            {
                "kind": {"enum": list(INSTRUMENTS),
                         "description": "none, projective, weak or copies"},
                "period": _number(0, True, "null or a time > 0 (first measurement at t = period)",
                                  nullable=True, maximum=MAX_TIME),
                "times": {"type": "array",
                          "items": _number(0, True, f"times from 0 to {MAX_TIME:g}",
                                           maximum=MAX_TIME),
                          "description": "a list of measurement times > 0"},
                "sigma": _number(MIN_SIGMA, False, f"null or a resolution >= {MIN_SIGMA:g} (weak "
                                 "S_y measurement; below it, use kind: projective)",
                                 nullable=True, maximum=1e6),
                "shots": _integer(0, 10**6, "an integer from 0 to 1000000"),
            }
        ),
        "detection": _obj(
            {
                "threshold": {"anyOf": [{"const": "auto"}, _number(0, True, maximum=1e300)],
                              "description": "auto or a number > 0"},
                "hold": _number(0, description="a time >= 0", maximum=MAX_TIME),
                "smooth": _number(0, description="a time >= 0 (moving-average width)",
                                  maximum=MAX_TIME),
                "window": _number(0, True, "a time > 0 (allowed detection delay)",
                                  maximum=MAX_TIME),
                "settle": _number(0, description="a time >= 0 (excluded after each loss)",
                                  maximum=MAX_TIME),
            }
        ),
        "sweep": {"type": "object", "additionalProperties": {"type": "array", "minItems": 1},
                  "description": "a mapping of key paths to non-empty lists"},
    },
    required=["model", "time"],
)

DEFAULTS = {
    "model": {"r": 0.0, "Gamma": 1.0, "gamma_coll": 0.0, "gamma_phi": 0.0, "gamma_rel": 0.0,
              "chi": 0.0, "kind": "spin"},
    "initial_state": {"kind": "dicke", "j": None, "m": None, "theta": math.pi, "phi": 0.0},
    "loss": {"rate_per_spin": 0.0, "times": []},
    "time": {"n_samples": 101},
    "run": {"trajectories": 100, "seed": 0, "store": "trajectories", "unit_size": UNIT_SIZE_DEFAULT,
            "target_sem": None, "engine": "auto"},
    "measurement": {"kind": "none", "period": None, "times": [], "sigma": None, "shots": 0},
    "detection": dict(DETECTION_DEFAULTS),
    "sweep": {},
}

#: Keys added to schema v1 after it shipped: at these values they are left out of the scenario
#: hash, so run directories written before them still resume.
NEUTRAL_DEFAULTS = {"model": {"chi": 0.0, "kind": "spin"},
                    "measurement": {"kind": "none", "period": None, "times": [], "sigma": None},
                    "run": {"engine": ("auto", "jumps")}}  # a tuple: any of these values

#: A scenario document may expand (YAML aliases counted at every use) to this many values, and
#: nest this deep: far beyond any real scenario, far below what would hang validation.
MAX_NODES = 100_000
MAX_DEPTH = 32
#: Refused: more work units than this (the engines refuse more jumps or CPU per trajectory:
#: ``engines.check_point``).
MAX_UNITS = 10**6


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 numbers (``1e-3`` is a float, not a string) and
    duplicate keys refused."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise ScenarioError(f"duplicate key '{key}' (line "
                                            f"{key_node.start_mark.line + 1}); give each key once")
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def parse_yaml(text: str, where: str):
    """The YAML document in ``text``, checked to be a small tree of JSON values."""
    try:
        document = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise ScenarioError(f"{where}: not valid YAML{line}") from None
    except ScenarioError as err:
        raise ScenarioError(f"{where}: {err}") from None
    except RecursionError:
        raise ScenarioError(f"{where}: nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as err:  # a value the loader cannot build, e.g. a 5000-digit integer
        if "digits" in str(err):
            raise ScenarioError(f"{where}: a number with more than "
                                f"{sys.get_int_max_str_digits()} digits; no key takes one") from None
        raise ScenarioError(f"{where}: a value YAML cannot read ({err})") from None
    _check_tree(document, where)
    return document


def _check_tree(document, where: str) -> None:
    """Refuse values JSON cannot hold (dates, bytes, sets, non-string keys), nesting deeper
    than MAX_DEPTH and documents expanding to more than MAX_NODES values (alias bombs).

    Shared sub-trees (YAML aliases) are sized once and counted at every use."""
    sizes: dict[int, int] = {}

    def size(node, parts: tuple) -> int:
        if len(parts) > MAX_DEPTH:
            raise ScenarioError(f"{where}: nested too deeply (at most {MAX_DEPTH} levels)")
        if id(node) in sizes:
            return sizes[id(node)]
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    raise ScenarioError(f"{where}: {_path(parts + (key,))}: the key {key!r} is "
                                        "not a name; keys are text")
            total = 1 + sum(size(value, parts + (key,)) for key, value in node.items())
        elif isinstance(node, list):
            total = 1 + sum(size(value, parts + (k,)) for k, value in enumerate(node))
        elif node is None or isinstance(node, (str, bool, int, float)):
            total = 1
        else:
            raise ScenarioError(f"{where}: {_path(parts)}: a {type(node).__name__} value is not "
                                "allowed; give a number, text, a list or a mapping")
        if total > MAX_NODES:
            raise ScenarioError(f"{where}: the document expands to more than {MAX_NODES} values "
                                "(YAML aliases?); write the scenario out plainly")
        sizes[id(node)] = total
        return total

    size(document, ())


@dataclass
class Scenario:
    """A resolved scenario: ``resolved`` (defaults filled, sweep kept) and its sweep ``points``."""

    resolved: dict
    points: list[Point]
    swept: dict

    @property
    def name(self) -> str:
        return self.resolved["name"]

    def check_resources(self) -> None:
        """Refuse, before a run, a point whose work cannot fit this machine: blocks or a work unit
        beyond the memory budget, more than MAX_JUMPS expected jumps per trajectory, or stored
        events beyond memory (one ScenarioError line saying what would fit)."""
        for index, point in enumerate(self.points):
            engines.check_point(point, _label(index, point, self.swept))

    def hash(self) -> str:
        """SHA-256 of the resolved scenario, to recognise a run directory on --resume."""
        return _digest(self.resolved, swept=self.resolved["sweep"])

    def family_hash(self) -> str:
        """SHA-256 of the resolved scenario without run.trajectories: the runs one directory
        can grow through (trajectory i of point p draws only from its stream (seed, p, i))."""
        return _digest(_without_trajectories(self.resolved), swept=self.resolved["sweep"])

    def point_family_hash(self, index: int) -> str:
        """``point_hash`` without run.trajectories (with a unit's first trajectory and count,
        what a work unit's commit record names)."""
        return _digest(_without_trajectories(self.points[index].values), swept={})

    def cost(self) -> list[dict]:
        """``cost_estimate`` of every point."""
        return [engines.cost_estimate(point) for point in self.points]

    def point_hash(self, index: int) -> str:
        """SHA-256 of one resolved point: what a work unit's commit record names."""
        return _digest(self.points[index].values, swept={})


def _without_trajectories(tree: dict) -> dict:
    return {**tree, "run": {k: v for k, v in tree["run"].items() if k != "trajectories"}}


def _digest(tree: dict, swept: dict) -> str:
    """SHA-256 of a resolved scenario or point, without the keys added to schema v1 later that
    are at their neutral defaults (and not swept): old run directories keep their hashes."""
    hashed = copy.deepcopy(tree)
    for section, values in NEUTRAL_DEFAULTS.items():
        for key, value in values.items():
            neutral = value if isinstance(value, tuple) else (value,)
            if key in hashed[section] and hashed[section][key] in neutral \
                    and f"{section}.{key}" not in swept:
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
    description = _schema_at(parts).get("description") or _expected(error)
    big = isinstance(error.instance, (dict, list)) and error.instance
    shown = "value" if big else json.dumps(error.instance)
    return f"{_path(parts)}: {printable(shown, 60)} is not allowed; expected {description}"


_TYPE_WORDS = {"object": "a section of keys", "array": "a list", "number": "a number",
               "integer": "a whole number", "string": "text", "boolean": "true or false",
               "null": "nothing (null)"}


def _expected(error: jsonschema.ValidationError) -> str:
    """What a key takes, in words, for schema nodes without a description."""
    value = error.validator_value
    if error.validator == "type":
        kinds = [value] if isinstance(value, str) else list(value)
        return " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
    if error.validator == "enum":
        return "one of " + ", ".join(map(str, value))
    if error.validator == "minItems":
        return f"a list of at least {value} value{'s' * (value != 1)}"
    if error.validator == "maxItems":
        return f"a list of at most {value} values"
    if error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=",
                "exclusiveMaximum": "<"}[error.validator]
        return f"a number {sign} {value:g}"
    return "a value the scenario reference (README) allows"


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


def _as_integers(node, schema: dict):
    """Whole floats (``N: 4.0``) where the schema asks for an integer become ints; JSON Schema
    counts 4.0 as an integer, Python's range() and numpy's sizes do not."""
    integer = [schema, *schema.get("anyOf", [])]  # run.unit_size: "auto" or an integer
    if isinstance(node, float) and any(alt.get("type") == "integer" for alt in integer):
        return int(node)
    if isinstance(node, dict):
        properties = schema.get("properties", {})
        return {key: _as_integers(value, properties.get(key, {})) for key, value in node.items()}
    return node


def _with_defaults(raw: dict) -> dict:
    out = _as_integers(raw, SCHEMA)
    for section, values in DEFAULTS.items():
        if isinstance(values, dict) and section != "sweep":
            out[section] = {**values, **out.get(section, {})}
        else:
            out.setdefault(section, copy.deepcopy(values))
    if out["model"]["kind"] == "hybrid":  # its SPIN_ONLY_KEYS are refused, so these are defaults
        out["model"] = {**HYBRID_DEFAULTS, **{key: value for key, value in out["model"].items()
                                              if key not in SPIN_ONLY_KEYS}}
    out["sweep"] = {key: [_as_integers(v, _schema_at(key.split("."))) for v in values]
                    for key, values in out["sweep"].items()}
    return out


def _set(tree: dict, dotted: str, value) -> None:
    *head, leaf = dotted.split(".")
    node = tree
    for key in head:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ScenarioError(f"{dotted}: '{key}' is not a section")
    node[leaf] = value


def override(raw: dict, dotted: str, value) -> None:
    """Apply ``--set dotted=value``: ``sweep.KEY=[...]`` sets a sweep axis, and a value for a
    swept key replaces its axis (the run then has that one value)."""
    if dotted.startswith("sweep."):
        sweep = raw.setdefault("sweep", {})
        if not isinstance(sweep, dict):
            raise ScenarioError(f"--set {dotted}: 'sweep' is not a mapping")
        sweep[dotted.removeprefix("sweep.")] = value
        return
    sweep = raw.get("sweep")
    if isinstance(sweep, dict) and dotted in sweep:
        del sweep[dotted]
    _set(raw, dotted, value)


def _sweepable_keys() -> list[str]:
    keys = []
    for section, node in SCHEMA["properties"].items():
        for key in node.get("properties", {}):
            if section not in ("run", "sweep"):
                keys.append(f"{section}.{key}")
    return keys


def _check_model_kind(raw: dict) -> None:
    """model.kind: the keys of the hybrid model belong to it alone, and it has no
    SPIN_ONLY_KEYS (its Gamma and gamma_coll come from the cavity)."""
    model, swept = raw.get("model", {}), raw.get("sweep", {})
    if "model.kind" in swept:
        raise ScenarioError("sweep.model.kind: one model kind per run; run the spin and the "
                            "hybrid model as two scenarios")
    given = set(model) | {key.split(".", 1)[1] for key in swept if key.startswith("model.")}
    if "N" not in given and "groups" not in given:
        raise ScenarioError("model: 'N' is a required property")
    for key in ("groups", "broadening"):
        if key in given and model.get("kind", "spin") == "hybrid":
            raise ScenarioError(f"model.{key}: classes of spins run in the spin model only (not "
                                "model.kind: hybrid)")
    if "groups" in given and "broadening" in given:
        raise ScenarioError("model.broadening: give either model.groups or model.broadening "
                            "(which makes the groups)")
    if model.get("kind", "spin") == "hybrid":
        for key in SPIN_ONLY_KEYS:
            if key in given:
                raise ScenarioError(f"model.{key}: not a key of the hybrid model (model.kind: "
                                    "hybrid), whose Gamma and gamma_coll come from the cavity "
                                    "(Eqs. 12-13); set g, kappa_sqz, kappa_int and Delta_c")
        if "g" not in given:
            raise ScenarioError("model.g: the hybrid model (model.kind: hybrid) needs the "
                                "spin-cavity coupling g")
        return
    for key in HYBRID_KEYS:
        if key in given:
            raise ScenarioError(f"model.{key}: a key of the hybrid model only; set model.kind: "
                                "hybrid (spins + cavity + squeezed reservoir, Eq. 9) or remove it")


def _resolve_hybrid(point: dict, label: str) -> None:
    """A hybrid point's Gamma and gamma_coll (Eqs. 12-13: the spin model it reduces to when
    sqrt(N) g << kappa; chi 0) and its Fock cut-off (``hybrid.auto_n_max``, or the given one checked
    against the photons of the squeezed reservoir)."""
    m = point["model"]
    if m["kappa_sqz"] + m["kappa_int"] < MIN_KAPPA:  # Eqs. (12)-(13) divide by its square
        raise ScenarioError(f"{label}model.kappa_sqz: the cavity needs a decay; give "
                            f"kappa_sqz + kappa_int >= {MIN_KAPPA:g}")
    rates = squeezed_reservoir_rates(m["g"], m["kappa_sqz"], m["kappa_int"], m["r"])
    m["Gamma"], m["gamma_coll"], m["chi"] = rates.Gamma, rates.gamma_coll, 0.0
    reservoir = (m["kappa_sqz"], m["kappa_int"], m["r"])
    basis = m["cavity_basis"]
    if m["n_max"] == "auto":
        enough = hybrid.auto_n_max(*reservoir, MAX_N_MAX, basis)
        if enough is None:
            raise ScenarioError(f"{label}model.r: the squeezed reservoir at r = {m['r']:g} fills "
                                f"more than {MAX_N_MAX} Fock levels (model.n_max); lower model.r")
        m["n_max"] = enough
        return
    tail = hybrid.reservoir_tail(*reservoir, m["n_max"], basis)
    if tail > hybrid.REFUSE_TOP_WEIGHT:
        enough = hybrid.auto_n_max(*reservoir, MAX_N_MAX, basis)
        advice = f"n_max >= {enough} or " if enough else ""
        raise ScenarioError(f"{label}model.n_max: a cut-off at {m['n_max']} photons leaves "
                            f"{tail:.2g} of the squeezed reservoir's photon distribution "
                            f"(r = {m['r']:g}) at or beyond it (at most "
                            f"{hybrid.REFUSE_TOP_WEIGHT:g}); use {advice}n_max: auto")


def _broadened_groups(point: dict, label: str) -> None:
    """model.broadening: model.groups of M equal classes at the detunings of
    ``groups.broadening``."""
    m, spec = point["model"], point["model"]["broadening"]
    M = spec["groups"]
    if m["N"] % M:
        raise ScenarioError(f"{label}model.broadening.groups: {M} classes of equal size need N "
                            f"divisible by {M} (N = {m['N']}); unequal classes break the "
                            "symmetry of the broadening (docs/validation.md)")
    deltas = groups.broadening(spec["distribution"], spec["width"], M)
    m["groups"] = [{"N": m["N"] // M, "delta": float(d), "weight": 1.0} for d in deltas]


def _resolve_groups(point: dict, label: str) -> None:
    """model.groups: each class's delta (0) and weight (1) filled in, and model.N their sum
    (given, it must be that sum); the initial states the product space has."""
    m, init = point["model"], point["initial_state"]
    for key in GROUPED_REFUSED:
        if m[key]:
            raise ScenarioError(f"{label}model.{key}: not in the grouped model (model.groups), "
                                "whose classes stay symmetric (no local rates, no twisting); "
                                "remove it")
    m["groups"] = [{"delta": 0.0, "weight": 1.0, **g} for g in m["groups"]]
    total = sum(g["N"] for g in m["groups"])
    if m.setdefault("N", total) != total:
        raise ScenarioError(f"{label}model.N: {m['N']} is not the {total} spins of model.groups; "
                            "give their sum or leave model.N out")
    if init["kind"] == "steady" or init["j"] not in (None, total / 2):
        key = "kind" if init["kind"] == "steady" else "j"
        raise ScenarioError(f"{label}initial_state.{key}: the grouped model starts in a Dicke "
                            "state of the largest total spin j = N/2 (any m) or a coherent spin "
                            "state; use kind: dicke or css")


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
    _check_measurement(point["measurement"], point["time"]["t_end"], label)
    meas = point["measurement"]
    if model["kind"] == "hybrid" and meas["kind"] == "none" and meas["shots"]:
        raise ScenarioError(f"{label}measurement.shots: the Sy2_shots readout is not kept for "
                            "model.kind: hybrid; use measurement.kind: copies")
    if len(point["loss"]["times"]) > N:
        raise ScenarioError(f"{label}loss.times: {len(point['loss']['times'])} scripted losses "
                            f"but only N = {N} spins")


def _check_measurement(meas: dict, t_end: float, label: str) -> None:
    kind, scheduled = meas["kind"], meas["period"] is not None or meas["times"]
    if kind == "none":
        if scheduled or meas["sigma"] is not None:
            raise ScenarioError(f"{label}measurement.kind: 'none' takes no period, times or "
                                "sigma; choose projective, weak or copies")
        return
    if not scheduled:
        raise ScenarioError(f"{label}measurement: kind '{kind}' needs a period or times")
    late = [t for t in meas["times"] if t > t_end]
    if late:
        raise ScenarioError(f"{label}measurement.times: {late[0]:g} is after time.t_end = "
                            f"{t_end:g}; measure within the run")
    if not meas["times"] and meas["period"] > t_end:
        raise ScenarioError(f"{label}measurement.period: {meas['period']:g} schedules no "
                            f"measurement up to time.t_end = {t_end:g}; choose a shorter period")
    if meas["period"] is not None and t_end / meas["period"] > MAX_MEASUREMENTS:
        raise ScenarioError(f"{label}measurement.period: more than {MAX_MEASUREMENTS} "
                            "measurements up to time.t_end; choose a longer period")
    if (kind == "weak") != (meas["sigma"] is not None):
        raise ScenarioError(f"{label}measurement.sigma: give a resolution sigma for kind 'weak' "
                            "(and only for it)")
    if (kind == "copies") != (meas["shots"] > 0):
        raise ScenarioError(f"{label}measurement.shots: kind 'copies' takes shots >= 1 (the "
                            "number of copies); projective and weak take no shots")


def _label(index: int, point: dict, keys) -> str:
    """'sweep point 3 (model.N=41, model.r=2.5): ' for messages about one point of a sweep."""
    return f"sweep point {index} ({sweep_label(point, keys)}): " if keys else ""


def resolve(raw, name: str = "scenario") -> Scenario:
    """Validate a raw scenario mapping and expand its sweep."""
    _check_tree(raw, "scenario")
    check_schema(raw)
    _check_model_kind(raw)
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
    n_points = math.prod(len(values) for values in resolved["sweep"].values())
    if n_points > MAX_UNITS:
        raise ScenarioError(f"sweep: {n_points} points; at most {MAX_UNITS}")
    points, units = [], 0
    for index, combo in enumerate(itertools.product(*resolved["sweep"].values())):
        point = copy.deepcopy(resolved)
        del point["sweep"]
        for key, value in zip(keys, combo):
            _set(point, key, value)
        label = _label(index, point, keys)
        try:
            check_schema(point)
        except ScenarioError as err:
            raise ScenarioError(f"{label}{err}") from None
        if point["model"]["kind"] == "hybrid":
            _resolve_hybrid(point, label)
        if "broadening" in point["model"]:
            _broadened_groups(point, label)
        if "groups" in point["model"]:
            _resolve_groups(point, label)
        _check_point(point, label)
        point["run"]["engine"] = engines.resolve_engine(point, label)
        if point["run"]["unit_size"] == "auto":
            point["run"]["unit_size"] = engines.auto_unit_size(point)
        units += -(-point["run"]["trajectories"] // point["run"]["unit_size"])
        if units > MAX_UNITS:
            raise ScenarioError(f"run.trajectories: more than {MAX_UNITS} work units of "
                                f"run.unit_size = {point['run']['unit_size']} trajectories; "
                                "lower run.trajectories or raise run.unit_size")
        points.append(Point(point))
    return Scenario(resolved, points, dict(resolved["sweep"]))


def parse_override(text: str) -> tuple[str, object]:
    """'model.r=2.0' -> ('model.r', 2.0); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ScenarioError(f"--set {text}: expected KEY=VALUE, e.g. --set model.r=2.0")
    return key.strip(), parse_yaml(value, f"--set {key.strip()}")


def load(source, overrides=()) -> Scenario:
    """Read, override, validate and resolve a scenario: a YAML file's path, or a mapping."""
    if isinstance(source, dict):
        raw, name = plain(source), "scenario"
    else:
        path = Path(source)
        if not path.exists():
            raise ScenarioError(f"{printable(path, 200)}: no such scenario file")
        if not path.is_file():
            raise ScenarioError(f"{printable(path, 200)}: not a regular file (a directory, pipe "
                                "or device); give a scenario YAML file")
        if path.stat().st_size > 1 << 20:
            raise ScenarioError(f"{path}: larger than 1 MiB; not a scenario file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ScenarioError(f"{path}: not a UTF-8 text file; scenario files are YAML "
                                "text") from None
        raw, name = parse_yaml(text, str(path)), printable(path.stem, 200)
        if raw is None:
            raise ScenarioError(f"{path}: the file is empty; see scenarios/quickstart.yaml")
        if not isinstance(raw, dict):
            raise ScenarioError(f"{path}: expected a YAML mapping with model:, time:, ... sections")
    for key, value in overrides:
        override(raw, key, plain(value))
    return resolve(raw, name=name)


def plain(node, depth: int = 0):
    """A copy of a scenario written in Python, NumPy's scalars and arrays (a notebook's
    ``np.int64(40)``, ``np.linspace(...)``) as the numbers and lists they hold; other values are
    left for ``_check_tree`` to judge."""
    if depth > MAX_DEPTH:
        raise ScenarioError(f"scenario: nested too deeply (at most {MAX_DEPTH} levels)")
    if isinstance(node, np.ndarray | np.generic):
        node = node.tolist()
    if isinstance(node, dict):
        return {key: plain(value, depth + 1) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [plain(value, depth + 1) for value in node]
    return copy.deepcopy(node)
