"""The sections of the report that present the out-of-fold models, the controlled slopes,
the face-count effects, the detector check, the importances and the provenance."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from posterlab.analysis._render import Block, cell
from posterlab.analysis.headline import model_rows
from posterlab.analysis.result import AnalysisResult

__all__ = ["detail_blocks", "provenance_blocks", "statement"]


def provenance_blocks(result: AnalysisResult) -> list[Block]:
    prov = result.provenance
    if not prov:
        return []
    detector = prov.get("face_detector") or {}
    items = [f"posterlab {prov.get('posterlab_version')}, analysed {prov.get('created_at')}",
             f"run {prov.get('run')}, n = {prov.get('n')} rated posters, feature version "
             f"{prov.get('feature_version')}",
             f"face detector: {detector}",
             f"analysis settings: {prov.get('settings', {}).get('analysis_options', {})}"]
    if prov.get("synthetic"):
        items.insert(0, "SYNTHETIC DATA: the posters and ratings are made up.")
    return [("h2", "Provenance"), ("ul", items)]


def _models(result: AnalysisResult) -> list[Block]:
    rows = model_rows(result.model)
    if not rows:
        return [("p", f"The models were skipped: {result.model.get('skipped', 'no rows')}.")]
    note = ("Every model is scored on the same outer fits of a repeated k-fold; intervals are "
            "corrected resampled t intervals (Nadeau-Bengio). The MLP's hidden size and L2 and "
            "ridge's penalty are chosen inside each outer training fold. The rating band is "
            "scored (AUC) from the same fits' predicted ratings; the mean baseline's AUC is 0.5 "
            "by construction. permutation p: ridge refitted on permuted ratings.")
    table = pd.DataFrame(rows)
    perms = {t: (e.get("permutation_p") if isinstance(e, Mapping) else None)
             for t, e in result.model.items()}
    return [("h2", "Predicting the rating out of fold"), ("p", note), ("table", table),
            ("p", "permutation p: " + ", ".join(f"{t} {cell(p)}" for t, p in perms.items()))]


def _controls(result: AnalysisResult) -> list[Block]:
    if not result.controls:
        return []
    table = pd.DataFrame(result.controls)
    used = ", ".join(result.controls[0].get("controls") or []) or "nothing"
    cols = ["feature", "family", "n", "slope", "ci_low", "ci_high", "slope_per_sd",
            "partial_r", "p", "p_adjusted"]
    return [("h2", "Each feature with genre and year held fixed"),
            ("p", f"OLS of the rating on the feature with {used} as controls: slope in rating "
                  "points per unit of the feature (colour on 0-1) and per standard deviation, "
                  "95% CI, partial correlation. p adjusted by Benjamini-Hochberg within the "
                  "primary family (face_count, mean_r, mean_g, mean_b) and within the "
                  "exploratory rest."),
            ("table", table.sort_values(["family", "p"], ascending=[False, True])[cols])]


def _faces(result: AnalysisResult) -> list[Block]:
    effects = result.face_effects
    if not effects:
        return []
    per, some, trend = effects["per_face"], effects["none_vs_some"], effects["trend"]
    items = [
        f"Per extra face: {cell(per['slope'])} rating points (95% CI {cell(per['ci_low'])} to "
        f"{cell(per['ci_high'])}, p = {cell(per['p'])}, n = {per['n']}).",
        f"One or more faces against none: {cell(some['difference'])} points (Welch 95% CI "
        f"{cell(some['ci_low'])} to {cell(some['ci_high'])}, p = {cell(some['p'])}), Cohen's "
        f"d = {cell(some['cohens_d'])}; n = {some['n_some']} against {some['n_none']}.",
        f"Across the face buckets: ANOVA p = {cell(trend['anova_p'])}; linear trend "
        f"{cell(trend['slope_per_bucket'])} points per bucket (p = {cell(trend['trend_p'])}).",
    ]
    blocks: list[Block] = [("h2", "The face-count effect in rating points"), ("ul", items)]
    detector = result.detector
    if "thresholds" in detector:
        blocks += [("p", "The effect per face when faces are counted at other detector "
                         "confidence thresholds (and per face provider):"),
                   ("table", pd.DataFrame(detector["thresholds"]))]
    elif detector.get("skipped"):
        blocks.append(("p", f"Detector thresholds not checked: {detector['skipped']}."))
    return blocks


def _importance(result: AnalysisResult) -> list[Block]:
    if not result.importance:
        return []
    return [("h2", "Which inputs the MLP uses (permutation importance)"),
            ("p", "R² lost on the held-out fold when one input is shuffled, poster features "
                  "alone; mean over the outer fits with a corrected 95% interval. An interval "
                  "that includes 0: the input adds nothing visible out of fold."),
            ("table", pd.DataFrame(result.importance))]


def detail_blocks(result: AnalysisResult) -> list[Block]:
    """Models, controls, face effects and importance, in that order."""
    return [*_models(result), *_controls(result), *_faces(result), *_importance(result)]


def statement(result: AnalysisResult) -> list[str]:
    """What the numbers say and do not say, with this run's n."""
    lines = [
        f"These figures describe {result.n} rated posters that went through the pipeline; "
        "posters that failed or have no rating are not in them.",
        "A correlation is an association, not a cause: a poster feature can go with the "
        "rating because both depend on something else (genre, era, budget, studio); the "
        "slopes below hold genre and year fixed, nothing else.",
        "Face counts come from a detector and miss or invent faces; such measurement error "
        "weakens the correlations it enters.",
        "Colour is on 0-1 (0 = none of the channel, 1 = full) in every table, plot and the "
        "export.",
    ]
    if result.constant_features:
        lines.append("Left out as constant on every poster: "
                     f"{', '.join(result.constant_features)}.")  # fmt: skip
    return lines
