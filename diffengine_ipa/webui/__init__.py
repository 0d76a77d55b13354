"""A web page for training, generating and evaluating, built on the kit's own
tools and API: ``python tools/webui.py [--host] [--port] [--workspace] [--auth]``.

Only :mod:`.page` and :mod:`.server` import Gradio (the ``webui`` extra); the
callbacks in the other modules are plain functions.
"""

from .generation import InferencerCache, generate
from .train_options import TrainSettings
from .train_process import TrainingRuns, TrainStatus
from .workspace import Workspace, WorkspaceError

__all__ = [
    'Workspace',
    'WorkspaceError',
    'TrainSettings',
    'TrainingRuns',
    'TrainStatus',
    'InferencerCache',
    'generate',
]
