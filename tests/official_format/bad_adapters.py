"""A corpus of malformed adapter files, each with the line it must give.

Every reader of adapter files (convert, infer, test, pretrained_ip_adapter,
--resume, load_from) goes through the same validation, so each file here must
be refused with one line containing its ``message``.
"""

import torch

from ..tools.published_files import resampler


def good_state(kind: str) -> dict[str, torch.Tensor]:
    """A well-formed canonical state of each layout (tiny sizes)."""
    generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=generator)

    if kind == 'plus':
        state = resampler(rand, 'image_proj.', 64, 32, 32, 16)
    elif kind == 'sd3':
        state = resampler(rand, 'image_proj.', 64, 32, 32, 16, time_aware=True)
    else:
        width = 48 if kind == 'flux' else 32
        state = {
            'image_proj.proj.weight': rand(4 * width, 16),
            'image_proj.proj.bias': rand(4 * width),
            'image_proj.norm.weight': rand(width),
            'image_proj.norm.bias': rand(width),
        }
    if kind == 'sd3':
        for i in range(2):
            state.update(
                {
                    f'ip_adapter.{i}.norm_ip.linear.weight': rand(64, 64),
                    f'ip_adapter.{i}.norm_ip.linear.bias': rand(64),
                    f'ip_adapter.{i}.to_k_ip.weight': rand(32, 32),
                    f'ip_adapter.{i}.to_v_ip.weight': rand(32, 32),
                    f'ip_adapter.{i}.norm_q.weight': rand(8),
                    f'ip_adapter.{i}.norm_k.weight': rand(8),
                    f'ip_adapter.{i}.norm_ip_k.weight': rand(8),
                }
            )
    elif kind == 'flux':
        for i in range(2):
            for kv in ('to_k_ip', 'to_v_ip'):
                state[f'ip_adapter.{i}.{kv}.weight'] = rand(32, 48)
                state[f'ip_adapter.{i}.{kv}.bias'] = rand(32)
    else:
        for i in (1, 3):
            state[f'ip_adapter.{i}.to_k_ip.weight'] = rand(32, 32)
            state[f'ip_adapter.{i}.to_v_ip.weight'] = rand(32, 32)
    return state


def _set(key, value):
    def mutate(state):
        state[key] = value(state[key]) if callable(value) else value

    return mutate


def _drop(*keys):
    def mutate(state):
        for key in keys:
            del state[key]

    return mutate


def _poison(key, value):
    def mutate(state):
        state[key] = state[key].clone()
        state[key].view(-1)[0] = value

    return mutate


K1 = 'ip_adapter.1.to_k_ip.weight'
# (name, layout kind, mutation of the canonical state, part of the message)
BAD_STATES = [
    ('NaN weight', 'base', _poison(K1, float('nan')), 'holds NaN/Inf values'),
    (
        'Inf weight',
        'flux',
        _poison('image_proj.proj.weight', float('inf')),
        'holds NaN/Inf values',
    ),
    (
        'NaN in the Resampler',
        'plus',
        _poison('image_proj.layers.0.0.to_q.weight', float('nan')),
        'holds NaN/Inf values',
    ),
    (
        '1-d linear weight',
        'base',
        _set(K1, lambda t: t.flatten()),
        'a weight of that name has 2 dimensions',
    ),
    (
        '3-d norm',
        'base',
        _set('image_proj.norm.weight', lambda t: t.view(1, 1, -1)),
        'a weight of that name has 1 dimension',
    ),
    (
        '2-d latents',
        'plus',
        _set('image_proj.latents', lambda t: t[0]),
        'a weight of that name has 3 dimensions',
    ),
    (
        'zero-width norm',
        'base',
        lambda s: s.update(
            {
                'image_proj.norm.weight': torch.zeros(0),
                'image_proj.norm.bias': torch.zeros(0),
            }
        ),
        'has an empty dimension',
    ),
    (
        'wrong token width',
        'base',
        _set(K1, lambda t: t[:, :16]),
        'reads 16-d tokens, image_proj makes 32-d',
    ),
    (
        'K and V of different sizes',
        'base',
        _set('ip_adapter.3.to_v_ip.weight', lambda t: t[:8]),
        'differ in shape',
    ),
    (
        'bias longer than its weight',
        'base',
        _set('image_proj.proj.bias', lambda t: torch.cat([t, t])),
        'its weight 128 rows',
    ),
    (
        'missing FLUX bias',
        'flux',
        _drop('ip_adapter.0.to_k_ip.bias'),
        'lacks to_k_ip.bias',
    ),
    (
        'missing projection bias',
        'base',
        _drop('image_proj.proj.bias'),
        'image_proj lacks proj.bias',
    ),
    (
        'extra key in a FLUX block',
        'flux',
        _set('ip_adapter.1.to_q_ip.weight', torch.zeros(32, 48)),
        'has an unexpected to_q_ip.weight',
    ),
    (
        'extra key in an SD3 block',
        'sd3',
        _set('ip_adapter.0.to_out_ip.weight', torch.zeros(32, 32)),
        'has an unexpected to_out_ip.weight',
    ),
    (
        'Resampler widths disagree',
        'plus',
        _set('image_proj.proj_out.weight', lambda t: torch.cat([t, t], 1)),
        'the Resampler is 64 wide there',
    ),
    (
        'integer weights',
        'base',
        _set(K1, lambda t: t.long()),
        'not floating-point weights',
    ),
    ('a number, not a tensor', 'base', _set(K1, 3.0), 'not a tensor'),
    (
        'layers numbered 2, 4',
        'base',
        lambda s: s.update(
            {
                'ip_adapter.2.to_k_ip.weight': s.pop('ip_adapter.1.to_k_ip.weight'),
                'ip_adapter.2.to_v_ip.weight': s.pop('ip_adapter.1.to_v_ip.weight'),
            }
        ),
        'must be numbered 1, 3, 5',
    ),
]

# Checkpoints of this kit whose key map is bogus:
# (name, mutation of (state_dict, key_map), part of the message)
BAD_KEY_MAPS = [
    (
        'key map is a list',
        lambda state, keys: (state, list(keys)),
        'is not a map of the adapter weights',
    ),
    (
        'maps to a non-official name',
        lambda state, keys: (state, dict(keys, **{next(iter(keys)): 'unet.foo'})),
        'not an official key name',
    ),
    (
        'maps a weight it lacks',
        lambda state, keys: (state, dict(keys, ghost='image_proj.ghost')),
        'adapter weight ghost is missing',
    ),
    (
        'stacks different shapes',
        lambda state, keys: (
            dict(state, extra=torch.zeros(3, 5)),
            dict(keys, extra=keys['w1']),
        ),
        'stacks weights of different shapes',
    ),
]


def kit_checkpoint(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """A canonical state as a training checkpoint of this kit stores it:
    ``state_dict`` under our names and the ``key_map`` to official names."""
    keys = {f'w{i}': official for i, official in enumerate(state)}
    return {ours: state[official] for ours, official in keys.items()}, keys


def write_kit_checkpoint(path, state_dict: dict, key_map) -> None:
    torch.save(
        {
            'state_dict': state_dict,
            'meta': {'iter': 5, 'epoch': 1, 'ip_adapter': {'key_map': key_map}},
        },
        path,
    )
