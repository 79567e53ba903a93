"""Pure analysis: the numpy MLP, correlations with the rating, and the report.

Nothing here touches the database, the broker or the network; the only I/O is
:func:`write_report`, which writes the report files it is asked to write.
"""

from __future__ import annotations

from posterlab.analysis.correlations import bootstrap_ci, correlate, fisher_ci
from posterlab.analysis.fitted import FittedModel
from posterlab.analysis.groups import colour_groups, face_buckets
from posterlab.analysis.inputs import design_matrix
from posterlab.analysis.mlp import MLP, TrainingHistory
from posterlab.analysis.model import TrainingPlan, evaluate
from posterlab.analysis.report import write_report
from posterlab.analysis.summary import AnalysisResult, analyze
from posterlab.features_schema import HISTOGRAM_FEATURES, SCALAR_FEATURES

__all__ = [
    "HISTOGRAM_FEATURES",
    "MLP",
    "SCALAR_FEATURES",
    "AnalysisResult",
    "FittedModel",
    "TrainingHistory",
    "TrainingPlan",
    "analyze",
    "bootstrap_ci",
    "colour_groups",
    "correlate",
    "design_matrix",
    "evaluate",
    "face_buckets",
    "fisher_ci",
    "write_report",
]
