"""Config mistakes are one line before any model loads: a misspelt nested
key, a missing required field, a syntax error, a missing ``_base_``."""

import glob
import os.path as osp

import pytest

from diffengine_ipa.errors import UserError
from diffengine_ipa.user_config import load_user_config

from .conftest import REPO, TINY_CONFIG

TINY = osp.relpath(TINY_CONFIG, REPO)


@pytest.mark.parametrize(
    'option, message',
    [
        (
            'model.text_drop_ratee',
            'model.text_drop_ratee is not an argument of '
            "IPAdapter (did you mean 'text_drop_rate'?)",
        ),
        (
            'optim_wrapper.optimizer.lrr',
            'optim_wrapper.optimizer.lrr is not an '
            "argument of AdamW (did you mean 'lr'?)",
        ),
        (
            'custom_hooks.1.max_consecutiv',
            'custom_hooks.1.max_consecutiv is not '
            "an argument of NonFiniteLossGuardHook (did you mean 'max_consecutive'?)",
        ),
        (
            'default_hooks.checkpoint.max_keep_ckpt',
            'default_hooks.checkpoint.'
            'max_keep_ckpt is not an argument of AtomicCheckpointHook (did you mean '
            "'max_keep_ckpts'?)",
        ),
        (
            'train_dataloader.batch_szie',
            "train_dataloader.batch_szie is not a setting (did you mean 'batch_size'?)",
        ),
        (
            'train_dataloader.dataset.pipeline.3.sise',
            'train_dataloader.dataset.'
            "pipeline.3.sise is not an argument of CenterCrop (did you mean 'size'?)",
        ),
        (
            'train_cfg.max_epoch',
            'train_cfg.max_epoch is not an argument of '
            "ResumableEpochBasedTrainLoop (did you mean 'max_epochs'?)",
        ),
        (
            'param_scheduler.0.factr',
            'param_scheduler.0.factr is not an argument '
            "of ConstantLR (did you mean 'factor'?)",
        ),
        (
            'val_evaluator.clip_modl',
            'val_evaluator.clip_modl is not an argument '
            "of IPAdapterMetric (did you mean 'clip_model'?)",
        ),
        ('randomness.sed', "randomness.sed is not a setting (did you mean 'seed'?)"),
    ],
)
def test_misspelt_nested_key_names_the_closest(option, message):
    with pytest.raises(UserError) as err:
        load_user_config(TINY_CONFIG, {option: 1})
    assert str(err.value) == f'{TINY_CONFIG}: {message}'


def test_unknown_type_names_the_closest():
    with pytest.raises(
        UserError,
        match="model.family.type 'SD51' is not a "
        r"registered models entry \(did you mean 'SD15'\?\)",
    ):
        load_user_config(TINY_CONFIG, {'model.family.type': 'SD51'})


def write(folder, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    'text, message',
    [
        (
            "model = dict(type='IPAdapter', pretrained_model_name_or_path='x')\n",
            'model needs image_encoder (a required argument of IPAdapter)',
        ),
        ('x = (\n', "syntax error in the config: '(' was never closed (line 1)"),
        (
            "_base_ = ['./no_such_base.py']\n",
            'a _base_ file of the config does not exist',
        ),
        (
            'x = undefined_name\n',
            "the config failed to run: NameError: name 'undefined_name' is not defined",
        ),
    ],
)
def test_config_file_mistakes_are_one_line(tmp_path, text, message):
    path = write(tmp_path, 'my_config.py', text)
    with pytest.raises(UserError) as err:
        load_user_config(path)
    assert message in str(err.value) and '\n' not in str(err.value)
    assert str(err.value).startswith(path)


def test_every_shipped_config_passes_the_check():
    for path in sorted(glob.glob(osp.join(REPO, 'configs/ip_adapter/*.py'))):
        load_user_config(path)
