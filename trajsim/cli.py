"""The ``trajsim`` command: run, report, steady, validate.

What the user can fix (``TrajsimError``: bad input, an unusable directory; and file-system
errors) is one line on stderr and exit status 2, ``--debug`` shows its traceback; anything
else is a bug and shows its traceback with exit status 1.  Under mpirun, steps that rank 0
runs alone (reading the scenario, taking the directory) report from rank 0 only.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage errors: one line, exit 2
        self.exit(2, f"trajsim: error: {message} (see 'trajsim --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trajsim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"trajsim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")

    run = sub.add_parser("run", parents=[debug],
                         help="run a scenario and write its run directory")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", required=True, help="output run directory")
    run.add_argument("--trajectories", type=int, help="override run.trajectories")
    run.add_argument("--seed", type=int, help="override run.seed")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a scenario value, e.g. --set model.r=2.0 (repeatable)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run")
    run.add_argument("--threads", type=int, help="worker threads (default: all cores)")

    report = sub.add_parser("report", parents=[debug],
                         help="parity-detection statistics and figures of a run")
    report.add_argument("directory", help="a finished run directory")

    steady = sub.add_parser("steady", parents=[debug],
                         help="exact steady-state table for every sweep point")
    steady.add_argument("scenario", help="scenario YAML file")
    steady.add_argument("--out", help="write the table as CSV (and Parquet next to it)")
    steady.add_argument("--gap", action="store_true",
                        help="also the Liouvillian gaps of Eq. (2) (slow: seconds per point at N ~ 200)")
    steady.add_argument("--force", action="store_true",
                        help="replace existing --out files (never inside a run directory)")
    steady.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")

    validate = sub.add_parser("validate", parents=[debug],
                         help="check a scenario file and print it resolved")
    validate.add_argument("scenario", help="scenario YAML file")
    validate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return parser


def _load(args):
    from .api import load_scenario

    overrides = list(args.set)
    if getattr(args, "trajectories", None) is not None:
        overrides.append(("run.trajectories", args.trajectories))
    if getattr(args, "seed", None) is not None:
        overrides.append(("run.seed", args.seed))
    return load_scenario(args.scenario, overrides)


def _run(args) -> int:
    from . import distribute
    from .api import run
    from .errors import TrajsimError

    if args.threads is not None and args.threads < 1:
        raise TrajsimError("--threads: give a whole number >= 1")
    scenario = distribute.on_root(distribute.world(), lambda: _load(args))
    result = run(scenario, args.out, resume=args.resume, threads=args.threads)
    if distribute.launched_rank() != 0:
        return 0
    print(f"trajsim: {scenario.name}: {len(scenario.points)} point(s) written to {result.path}")
    print(_final_values(result))
    return 0


def _final_values(result) -> str:
    """Per point: its swept values, the last sample (mean ± standard error) and the smallest
    ensemble xi^2 over time with its time."""
    from .point import shown
    summary, points = result.summary, result.points
    swept = [key for key in points.columns if key != "point"]
    lines = [" ".join([f"{'point':>5}", *(f"{key:>14}" for key in swept), f"{'t':>8}",
                       f"{'N':>8}", f"{'<Sz>':>18}", f"{'<Sy^2>':>22}", f"{'xi^2':>10}",
                       f"{'min xi^2 (t)':>20}"])]
    for point, rows in summary.groupby("point"):
        last = rows.iloc[-1]
        best = rows.loc[rows.xi2.idxmin()] if rows.xi2.notna().any() else last
        values = points.loc[points.point == point, swept].iloc[0] if swept else []
        lines.append(" ".join([f"{int(point):>5}", *(f"{shown(v):>14}" for v in values),
                               f"{last.t:>8.3g}", f"{last.N_mean:>8.3f}",
                               f"{last.Sz_mean:>9.4g} ± {last.Sz_sem:<6.2g}",
                               f"{last.Sy2_mean:>11.4g} ± {last.Sy2_sem:<8.2g}",
                               f"{last.xi2:>10.4g}", f"{best.xi2:>10.4g} ({best.t:.3g})"]))
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    """'0.3 s', '12 min', '3.1 h', '4.2 days'."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.2g} {unit}"
    return f"{seconds:.2g} s"


def _validate(args) -> int:
    import yaml

    from .detectors import bayes_bytes
    from .memory import memory_budget

    scenario = _load(args)
    scenario.check_resources()
    print(yaml.safe_dump(scenario.resolved, sort_keys=False).rstrip())
    cost = scenario.cost()
    for p, row in enumerate(cost):
        work = (f"estimated ~{row['jumps_per_trajectory']:.3g} jumps per trajectory"
                if row["engine"] == "jumps" else "record-level engine")
        model = scenario.points[p]["model"]
        if model["kind"] == "hybrid":
            work = f"hybrid engine, n_max = {model['n_max']}, {work}"
        if "groups" in model:
            from .engines.grouped import classes_of
            from .groups import dimension
            states = dimension(classes_of(scenario.points[p]))
            work = f"grouped engine, {len(model['groups'])} classes, {states} states, {work}"
        print(f"# point {p}: {work}, ~{_duration(row['cpu_s_per_trajectory'])} CPU per "
              f"trajectory (run.engine: {row['engine']})")
        bayes = bayes_bytes(scenario.points[p])
        if bayes is not None:
            fits = "" if bayes <= memory_budget() else (
                f", beyond the budget of {memory_budget() / 2**30:.0f} GiB: the report will have "
                "no bayes rows")
            print(f"# point {p}: the report's exact Bayesian filter needs ~{bayes / 2**20:.0f} "
                  f"MiB{fits}")
    print(f"# valid: {len(scenario.points)} point(s); estimated cost "
          f"~{_duration(sum(row['cpu_s'] for row in cost))} of one core (an estimate from the "
          "exact steady jump rate and the measured cost of a jump, not a bound)")
    return 0


def _report(args) -> int:
    from .report import write_report

    folder = write_report(args.directory)
    print(f"trajsim: report written to {folder}/report.md and report.html")
    return 0


def _steady(args) -> int:
    import os
    from pathlib import Path

    from .steady import steady_table
    from .store import RunDirectoryError, run_directory_above, write_parquet, write_text

    targets = []
    if args.out:
        csv = Path(args.out)
        targets = [csv, csv.with_suffix(".parquet")]
        run_dir = run_directory_above(csv.resolve().parent)
        if run_dir is not None:
            raise RunDirectoryError(f"--out {csv}: inside the run directory {run_dir}; "
                                    "write the steady-state table elsewhere")
        odd = [str(t) for t in targets if t.is_symlink() or (t.exists() and not t.is_file())]
        if odd:
            raise RunDirectoryError(f"--out {csv}: {odd[0]} is a directory or not a regular "
                                    "file; give a file name for the table, e.g. steady.csv")
        existing = [str(t) for t in targets if t.exists()]
        if existing and not args.force:
            verb = "exists" if len(existing) == 1 else "exist"
            raise RunDirectoryError(f"--out {csv}: {' and '.join(existing)} already {verb}; add "
                                    "--force to replace, or choose another name")
    table = steady_table(_load(args), gaps=args.gap, progress=os.isatty(2))
    print(table.to_string(index=False, float_format=lambda x: f"{x:.6g}"))
    if targets:
        write_text(targets[0], table.to_csv(index=False, float_format="%.10g"))
        write_parquet(table, targets[1])
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from . import distribute
    from .errors import TrajsimError

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("trajsim: %(message)s"))
    logger = logging.getLogger("trajsim")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return {"run": _run, "validate": _validate, "report": _report,
                "steady": _steady}[args.command](args)
    except distribute.PeerFailed as err:  # rank 0 has said why
        return err.status
    except distribute.WorkerFailed as err:
        print(f"trajsim: error: {err}; finished work units are kept (rerun with --resume)",
              file=sys.stderr, flush=True)
        distribute.abort(3)
        return 3
    except (TrajsimError, OSError) as err:
        if args.debug:
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"trajsim: error: {message}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("trajsim: interrupted; finished work units are kept (rerun with --resume)",
              file=sys.stderr)
        return 130
    finally:
        logger.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
