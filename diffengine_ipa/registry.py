"""The one place where every class of diffengine_ipa registers.

Each registry is a child of MMEngine's root registry of the same kind, so a
config with ``default_scope = 'diffengine_ipa'`` finds our classes first and
MMEngine's (loops, hooks, optimizers, ...) second. ``locations`` makes the
registry import the module that holds a class only when a config asks for it.
"""

from mmengine import registry as mmengine_registry
from mmengine.registry import Registry

__all__ = [
    'MODELS',
    'DATASETS',
    'TRANSFORMS',
    'HOOKS',
    'METRICS',
    'ARCHITECTURES',
    'LAYOUTS',
    'FACE_EMBEDDERS',
]


def _child(name: str, locations: tuple = ()) -> Registry:
    """A registry in our scope below MMEngine's registry ``name``."""
    parent = getattr(mmengine_registry, name)
    return Registry(parent.name, parent=parent, locations=list(locations))


MODELS = _child('MODELS', ['diffengine_ipa.models'])
DATASETS = _child('DATASETS', ['diffengine_ipa.datasets'])
TRANSFORMS = _child('TRANSFORMS', ['diffengine_ipa.datasets.transforms'])
HOOKS = _child('HOOKS', ['diffengine_ipa.engine'])
METRICS = _child('METRICS', ['diffengine_ipa.evaluation'])

# The rest of MMEngine's registries, so that building their classes under our
# default scope finds them without a fallback warning.
RUNNERS = _child('RUNNERS')
LOOPS = _child('LOOPS', ['diffengine_ipa.engine'])
DATA_SAMPLERS = _child('DATA_SAMPLERS')
FUNCTIONS = _child('FUNCTIONS', ['diffengine_ipa.engine'])
MODEL_WRAPPERS = _child('MODEL_WRAPPERS')
WEIGHT_INITIALIZERS = _child('WEIGHT_INITIALIZERS')
OPTIMIZERS = _child('OPTIMIZERS')
OPTIM_WRAPPERS = _child('OPTIM_WRAPPERS', ['diffengine_ipa.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = _child('OPTIM_WRAPPER_CONSTRUCTORS')
PARAM_SCHEDULERS = _child('PARAM_SCHEDULERS')
EVALUATOR = _child('EVALUATOR')
VISUALIZERS = _child('VISUALIZERS')
VISBACKENDS = _child('VISBACKENDS')
LOG_PROCESSORS = _child('LOG_PROCESSORS')
# Architectures buildable from config alone (random init, no download): the
# tiny models for tests and the demo, the full-size ones for parameter counts
# and benchmarks.
ARCHITECTURES = Registry(
    'architecture',
    locations=[
        'diffengine_ipa.models.random_models.architectures',
        'diffengine_ipa.models.families',
    ],
)
# The official adapter file layouts, each defined by the family that saves in
# it (read by diffengine_ipa.official_format without importing a family).
LAYOUTS = Registry('adapter layout', locations=['diffengine_ipa.models.families'])
# Face detectors + identity embedders (FaceID data preparation and the face
# similarity score): insightface's, and a weightless one for tests.
FACE_EMBEDDERS = Registry('face embedder', locations=['diffengine_ipa.faces'])
