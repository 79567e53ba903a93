"""``posterlab analyze``: the run's analysis again, with the user's choices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from posterlab.cli.common import cli, db_option, open_store, run_option, settings_from, wrap_errors


def _names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


@cli.command()
@run_option
@db_option
@click.option("--features", metavar="A,B,...", help="Only these poster features "
              "(e.g. face_count,mean_r,mean_g,mean_b) [default: every feature].")
@click.option("--controls", default="genre,year", show_default=True, metavar="LIST",
              help="Held fixed in the slopes: genre, year, both, or 'none'.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Folds of the repeated k-fold evaluation.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Repeats of the k-fold evaluation (new shuffles).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds folds, networks, bootstrap and permutations.")
@click.option("--genre", metavar="NAME", help="Only the films of this genre (e.g. Drama).")
@click.option("--min-n", type=click.IntRange(min=1), default=10, show_default=True,
              help="Smallest group shown with an interval in the grouped tables.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the whole result as one JSON object (network weights included).")
@click.option("--model-out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the trained networks (weights, scaling, settings) to FILE as JSON.")
@click.option("--stored", is_flag=True,
              help="Show the stored result instead of analysing the run again.")
@wrap_errors
def analyze(run_name: str | None, db: str | None, features: str | None, controls: str,
            folds: int, repeats: int, seed: int, genre: str | None, min_n: int,
            as_json: bool, model_out: Path | None, stored: bool) -> None:
    """Analyse a run again: out-of-fold models, slopes with controls, face effects.

    The result is stored with the run (it replaces the one made when the run ended).
    The summary fits a screen; the full result, network weights included, is --json.

    \b
    Examples:
      posterlab analyze
      posterlab analyze --features face_count,mean_r,mean_g,mean_b --controls genre
      posterlab analyze --genre Drama --folds 10 --repeats 3 --seed 1
      posterlab analyze --json > analysis.json
      posterlab analyze --model-out model.json
    """
    from posterlab.analysis.analyze import AnalysisOptions
    from posterlab.cli.summary import summary_lines
    from posterlab.pipeline.analysis import analysis_workers
    from posterlab.service.results import analyze as analyze_run

    chosen = _names(controls) or ()
    if chosen == ("none",):
        chosen = ()
    bad = [c for c in chosen if c not in ("genre", "year")]
    if bad:
        raise click.BadParameter(f"unknown control {', '.join(bad)}; use genre, year or none",
                                 param_hint="--controls")
    options = AnalysisOptions(seed=seed, folds=folds, repeats=repeats, features=_names(features),
                              controls=chosen, genre=genre, min_n=min_n,
                              workers=analysis_workers())
    with open_store(settings_from(db=db), existing=True) as store:
        try:
            result = analyze_run(store, run_name, stored=stored, options=options)
        except ValueError as exc:  # a feature or genre the run does not have
            raise click.UsageError(str(exc)) from exc
    if model_out is not None:
        _write_models(result, model_out)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo("\n".join(summary_lines(result)))


def _write_models(result: dict[str, Any], path: Path) -> None:
    networks = {task: entry["network"] for task, entry in result.get("model", {}).items()
                if isinstance(entry, dict) and entry.get("network")}
    path.write_text(json.dumps({"provenance": result.get("provenance"), "models": networks}),
                    encoding="utf-8")
    click.echo(f"networks written: {path}", err=True)
