"""The human summary of ``posterlab analyze``: a few tables over the analysis JSON.

Plain lines (no network weights: those go to ``--json`` or ``--model-out``), under 100
lines for any run.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from posterlab.analysis.headline import headline, model_rows

__all__ = ["summary_lines"]

_WIDTH = 100


def _f(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(row: Mapping[str, Any], low: str = "ci_low", high: str = "ci_high") -> str:
    return f"[{_f(row.get(low))}, {_f(row.get(high))}]"


def summary_lines(result: Mapping[str, Any], *, top: int = 8) -> list[str]:
    """The summary of an ``analyze`` result, one string per line."""
    prov = result.get("provenance") or {}
    title = f"posterlab analysis of run {prov.get('run', '?')}: n = {result.get('n', 0)}"
    if prov.get("synthetic"):
        title = "SYNTHETIC DATA -- " + title
    lines = [title, f"posterlab {prov.get('posterlab_version', '?')}, "
             f"{prov.get('created_at', '?')}, features {prov.get('feature_version', '?')}", ""]
    lines += textwrap.wrap(headline(result.get("model", {}), synthetic=bool(prov.get("synthetic"))),
                           _WIDTH)
    lines += ["", *_models(result.get("model", {})), "", *_faces(result), "",
              *_controls(result.get("controls") or [], top), "",
              *_importance(result.get("importance") or [], top)]
    constant = result.get("constant_features") or []
    if constant:
        lines += ["", f"Left out as constant on every poster: {', '.join(constant)}."]
    return lines


def _models(model: Mapping[str, Any]) -> list[str]:
    rows = model_rows(model)
    if not rows:
        return [f"Models skipped: {model.get('skipped', 'no rows')}"]
    out = [f"{'task':<28} {'model':<14} {'score':<6} {'mean':>7}  95% CI"]
    out += [f"{r['task']:<28} {r['model']:<14} {r['score']:<6} {_f(r['mean']):>7}  {_ci(r)}"
            for r in rows]
    return ["Out-of-fold scores (corrected resampled t intervals):", *out]


def _faces(result: Mapping[str, Any]) -> list[str]:
    effects = result.get("face_effects") or {}
    if not effects:
        return ["No face counts."]
    per, some, trend = effects["per_face"], effects["none_vs_some"], effects["trend"]
    lines = [
        "Faces on the poster:",
        f"  per extra face: {_f(per['slope'])} rating points {_ci(per)}, p = {_f(per['p'], 4)}",
        f"  1+ faces vs none: {_f(some['difference'])} points {_ci(some)}, Cohen's d = "
        f"{_f(some['cohens_d'])}, p = {_f(some['p'], 4)} (n = {some['n_some']} vs "
        f"{some['n_none']})",
        f"  trend over buckets: ANOVA p = {_f(trend['anova_p'], 4)}, slope per bucket "
        f"{_f(trend['slope_per_bucket'])} (p = {_f(trend['trend_p'], 4)})",
    ]
    buckets = " ".join(f"{b['bucket']}: {_f(b['mean'], 2)} (n={b['n']})"
                       for b in result.get("face_buckets") or [])
    lines += textwrap.wrap("  mean rating by faces: " + buckets, _WIDTH,
                           subsequent_indent="    ")
    thresholds = (result.get("detector") or {}).get("thresholds") or []
    if thresholds:  # the same effect, faces counted at other detector thresholds
        at = "; ".join(f"{r['threshold']:g}: {_f(r['slope'])} {_ci(r)}"
                       + (f" ({r['provider']})" if r.get("provider") not in (None, "all") else "")
                       for r in thresholds)
        lines += textwrap.wrap("  per face at detector thresholds " + at, _WIDTH,
                               subsequent_indent="    ")
    return lines


def _controls(controls: list[Mapping[str, Any]], top: int) -> list[str]:
    if not controls:
        return ["No controlled slopes."]
    used = ", ".join(controls[0].get("controls") or []) or "none"
    out = [f"Slopes with controls ({used}); BH within family; primary first:",
           f"  {'feature':<16} {'family':<12} {'per SD':>7} {'95% CI (per unit)':>24} "
           f"{'partial r':>9} {'p adj':>7}"]
    ranked = sorted(controls, key=lambda c: (c["family"] != "primary", c.get("p") or 1.0))
    for c in ranked[: top + 4]:
        out.append(f"  {c['feature']:<16} {c['family']:<12} {_f(c.get('slope_per_sd')):>7} "
                   f"{_ci(c):>24} {_f(c.get('partial_r')):>9} {_f(c.get('p_adjusted')):>7}")
    return out


def _importance(importance: list[Mapping[str, Any]], top: int) -> list[str]:
    if not importance:
        return ["No permutation importance (no model)."]
    out = ["Permutation importance (R² lost out of fold, MLP on poster features):"]
    out += [f"  {r['feature']:<16} {_f(r['mean'], 4):>8} {_ci(r)}" for r in importance[:top]]
    return out
