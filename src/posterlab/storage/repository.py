"""TEMPORARY: the old home of the data functions, re-exporting them from their modules.

The functions now live by aggregate in :mod:`~posterlab.storage.runs`,
:mod:`~posterlab.storage.posters`, :mod:`~posterlab.storage.caches` and
:mod:`~posterlab.storage.queries`. This module keeps the importers that are being
rewritten working until they import those; then it goes. Add nothing here.
"""

from __future__ import annotations

from posterlab.storage.caches import cached_faces as cached_faces
from posterlab.storage.caches import cached_faces_many as cached_faces_many
from posterlab.storage.caches import features_present as features_present
from posterlab.storage.caches import has_features as has_features
from posterlab.storage.caches import save_faces as save_faces
from posterlab.storage.caches import save_faces_many as save_faces_many
from posterlab.storage.caches import save_features as save_features
from posterlab.storage.caches import save_features_many as save_features_many
from posterlab.storage.models import utcnow as utcnow
from posterlab.storage.posters import FIRST_STAGE as FIRST_STAGE
from posterlab.storage.posters import Added as Added
from posterlab.storage.posters import Finished as Finished
from posterlab.storage.posters import add_counters as add_counters
from posterlab.storage.posters import add_posters as add_posters
from posterlab.storage.posters import advance as advance
from posterlab.storage.posters import claim as claim
from posterlab.storage.posters import claim_many as claim_many
from posterlab.storage.posters import current_stage as current_stage
from posterlab.storage.posters import finish as finish
from posterlab.storage.posters import finish_many as finish_many
from posterlab.storage.posters import movie_key as movie_key
from posterlab.storage.posters import pending_poster_ids as pending_poster_ids
from posterlab.storage.posters import pending_posters as pending_posters
from posterlab.storage.posters import poster_values as poster_values
from posterlab.storage.posters import release as release
from posterlab.storage.posters import requeue_failed as requeue_failed
from posterlab.storage.posters import stuck_posters as stuck_posters
from posterlab.storage.queries import face_figures as face_figures
from posterlab.storage.queries import failure_groups as failure_groups
from posterlab.storage.queries import recent_finished as recent_finished
from posterlab.storage.queries import results_select as results_select
from posterlab.storage.queries import status_counts as status_counts
from posterlab.storage.queries import workers_seen as workers_seen
from posterlab.storage.runs import claim_analysis as claim_analysis
from posterlab.storage.runs import find_run as find_run
from posterlab.storage.runs import get_or_create_run as get_or_create_run
from posterlab.storage.runs import list_runs as list_runs
from posterlab.storage.runs import save_analysis as save_analysis
