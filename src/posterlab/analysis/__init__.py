"""Pure analysis: the numpy MLP, correlations with the rating, and the report.

Nothing here touches the database, the broker or the network; the only I/O is
:func:`write_report`, which writes the report files it is asked to write.

Where things live: :mod:`~posterlab.analysis.analyze` (the entry point),
:mod:`~posterlab.analysis.network` (the MLP and backpropagation),
:mod:`~posterlab.analysis.training` (the training loop and its options),
:mod:`~posterlab.analysis.ensemble` (the hidden-size choice and the stored model),
:mod:`~posterlab.analysis.evaluation` (the split, the baselines and the metrics),
:mod:`~posterlab.analysis.correlations`, :mod:`~posterlab.analysis.groups`,
:mod:`~posterlab.analysis.inputs`, :mod:`~posterlab.analysis.result` and
:mod:`~posterlab.analysis.report`.
"""

from typing import TYPE_CHECKING

import lazy_loader

from posterlab.features_schema import HISTOGRAM_FEATURES, SCALAR_FEATURES

if TYPE_CHECKING:  # the names below, for type checkers; loaded on first use
    from posterlab.analysis.analyze import analyze
    from posterlab.analysis.correlations import bootstrap_ci, correlate, fisher_ci
    from posterlab.analysis.ensemble import FittedModel, TrainingPlan
    from posterlab.analysis.evaluation import evaluate
    from posterlab.analysis.groups import color_groups, face_buckets
    from posterlab.analysis.inputs import design_matrix
    from posterlab.analysis.network import MLP
    from posterlab.analysis.report import report_html, write_report
    from posterlab.analysis.result import AnalysisResult
    from posterlab.analysis.training import TrainingHistory, TrainingOptions

__all__ = [
    "HISTOGRAM_FEATURES",
    "MLP",
    "SCALAR_FEATURES",
    "AnalysisResult",
    "FittedModel",
    "TrainingHistory",
    "TrainingOptions",
    "TrainingPlan",
    "analyze",
    "bootstrap_ci",
    "color_groups",
    "correlate",
    "design_matrix",
    "evaluate",
    "face_buckets",
    "fisher_ci",
    "report_html",
    "write_report",
]

# submodules load on first use: the analysis does not import the report's matplotlib
__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs={
    "analyze": ["analyze"],
    "correlations": ["bootstrap_ci", "correlate", "fisher_ci"],
    "ensemble": ["FittedModel", "TrainingPlan"],
    "evaluation": ["evaluate"],
    "groups": ["color_groups", "face_buckets"],
    "inputs": ["design_matrix"],
    "network": ["MLP"],
    "report": ["report_html", "write_report"],
    "result": ["AnalysisResult"],
    "training": ["TrainingHistory", "TrainingOptions"],
})
