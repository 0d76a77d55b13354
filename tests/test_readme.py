"""The docs are executable truth: every shell command in the fenced blocks of
README.md, CONTRIBUTING.md and docs/*.md is either run by a named test (with
the tiny family in place of the real weights) or skipped here with the
reason. A command added to a page without an entry in ``COMMANDS`` fails this
test, as does an entry whose command or test is gone. Relative links between
the pages must name files that exist.

To document a new command: add one line to ``COMMANDS``, the command exactly as
the page writes it (continuation lines joined, comments and repeated spaces
removed) → the test that runs it (``tests/<file>.py::<test>``), or
``skip('why the suite does not run it')``.
"""

import ast
import glob
import os.path as osp
import re

from .conftest import REPO

PAGES = ['README.md', 'CONTRIBUTING.md', 'docs/*.md']
SKIPPED = 'skip: '


def skip(reason: str) -> str:
    """A ``COMMANDS`` value: the suite does not run the command, for ``reason``."""
    assert reason, 'a skipped command needs its reason'
    return SKIPPED + reason


MIM = 'tests/tools/test_train_and_mim.py::'
EVERY = 'tests/test_every_config_runs.py::test_config_trains_validates_and_tests'
TWO_STAGE = (
    'tests/engine/test_two_stage_recipe.py::'
    'test_stage1_square_then_stage2_buckets_from_its_adapter'
)
SHAPES = (
    'tests/shapes_world/test_training.py::'
    'test_a_short_sd15_training_follows_the_reference_colour'
)
SHAPES_FACES = (
    'tests/shapes_world/test_faceid_shapes.py::'
    'test_prepare_faces_embeds_every_reference_and_case'
)
INTEROP = 'tests/tools/test_diffusers_interop.py::'
FACES = 'tests/tools/test_prepare_faces.py::'
GPU_DRY_RUN = 'tests/benchmarks/test_gpu_run.py::test_cpu_dry_run_of_the_gpu_script'
INSTALL = skip(
    'tools/install.sh has these lines, run by tools/run_tests.sh in CI (.ci/run)'
)
SUITE = skip('the suite itself, or a part of it: .ci/run runs all of it')

# Command of a page → the test that runs it (the tiny family substituted), or
# skip(reason).
COMMANDS = {
    # docs/faceid.md: the tiny FaceID variants train, convert and generate as
    # diffusers does; --face through the tiny face embedder
    'mim train diffengine_ipa configs/ip_adapter/sd15_faceid_plusv2.py': (
        'tests/models/test_faceid.py::'
        'test_faceid_trains_converts_and_generates_as_diffusers'
    ),
    'python tools/infer.py configs/ip_adapter/sd15_faceid_plusv2.py '
    'work_dirs/sd15_faceid_plusv2/ip_adapter.safetensors --face face.jpg --s-scale 1.0 '
    '--lora-scale 0.6': (
        'tests/models/test_faceid.py::'
        'test_infer_from_a_face_photo_or_its_saved_embedding'
    ),
    # docs/faceid.md, "It learns": the shapes world's faces, as the test
    # prepares a small world's (the bases' encoder named)
    'python tools/prepare_faces.py work_dirs/shapes_world/pairs/data.json '
    '--embedder ShapesFaceEmbedder': SHAPES_FACES,
    'python tools/prepare_faces.py work_dirs/shapes_world/heldout/cases.json '
    '--embedder ShapesFaceEmbedder': SHAPES_FACES,
    # docs/shapes_world.md: the slow test runs the world, a short SD1.5
    # training (tools/train.py, what mim train runs), convert, the judge and
    # the contact sheet
    'python tools/shapes_world.py': SHAPES,
    'mim train diffengine_ipa configs/ip_adapter/shapes_sd15.py': SHAPES,
    'python tools/convert.py work_dirs/shapes_sd15': SHAPES,
    'python tools/test.py configs/ip_adapter/shapes_sd15.py '
    'work_dirs/shapes_sd15/ip_adapter.safetensors': SHAPES,
    'python tools/shapes_world.py --contact-sheet': SHAPES,
    # docs/speed_and_memory.md
    'pip install -c requirements/constraints.txt -r requirements/quant.txt': skip(
        'an extra; tests/models/test_quantization.py runs its torchao path'
    ),
    'python benchmarks/resident_memory.py --architecture sd15 --resolution 256 '
    '--out benchmarks/resident_memory_cpu.json': (
        'tests/benchmarks/test_resident_memory.py::test_resident_memory_rows'
    ),
    # README.md
    'bash tools/run_tests.sh': '.ci/run',
    'bash tools/demo.sh': skip(
        'installs into .venv (minutes); each of its '
        'steps is a command run by the test named here '
        '(mim train, convert, infer, test, plot)'
    ),
    'bash tools/webui.sh': skip(
        'installs, then serves until stopped; the page '
        'is tests/webui (test_browser drives it in '
        'chromium)'
    ),
    'mim train diffengine_ipa configs/ip_adapter/sd15_mini_dataset.py': MIM
    + 'test_mim_train_after_pip_install',
    'python tools/infer.py configs/ip_adapter/sd15_mini_dataset.py '
    'work_dirs/sd15_mini_dataset --image ref.jpg --prompt "a cat on a sofa" '
    '--out outputs/cat.png': INTEROP + 'test_infer_matches_diffusers_for_the_same_seed',
    'python tools/test.py configs/ip_adapter/sd15_mini_dataset.py '
    'work_dirs/sd15_mini_dataset --quick': 'tests/tools/test_evaluate.py::test_quick_evaluation_runs_the_three_quick_cases',
    # CONTRIBUTING.md
    'bash tools/install.sh': '.ci/run',
    '. .venv/bin/activate': INSTALL,
    'pip install -e .': skip(
        'a development install; the suite tests the real '
        'install (pip install .) that mim needs'
    ),
    'python -m pytest -n logical -m "not slow"': SUITE,
    'python -m pytest -n logical -m slow': SUITE,
    'bash benchmarks/gpu/run.sh --device cpu --tiny --one-process': GPU_DRY_RUN,
    'bash benchmarks/gpu/run.sh': skip(
        'needs a CUDA GPU machine; its CPU dry run is ' + GPU_DRY_RUN
    ),
    # docs/install.md
    'python3 -m venv .venv && . .venv/bin/activate': INSTALL,
    "pip install --upgrade pip 'setuptools>=77.0.3,<81' wheel": INSTALL,
    'pip install torch==2.13.0': INSTALL,
    'pip install -c requirements/constraints.txt -r requirements/runtime.txt': INSTALL,
    'pip install --no-deps openmim==0.3.9': INSTALL,
    'pip install -c requirements/constraints.txt -r requirements/mim.txt': INSTALL,
    'pip install --no-deps click==8.2.1': INSTALL,
    'pip install --no-deps --no-build-isolation .': INSTALL,
    # docs/training.md, data.md, convert_and_import.md, inference.md,
    # evaluation.md, speed_and_memory.md, families.md
    'mim train diffengine_ipa configs/ip_adapter/sd15_mini_dataset.py '
    '[--work-dir D] [--resume] [--amp] [--cfg-options KEY=VALUE ...]': MIM
    + 'test_mim_train_after_pip_install',
    'mim train diffengine_ipa configs/ip_adapter/sdxl_mini_dataset.py': EVERY,
    'mim train diffengine_ipa configs/ip_adapter/flux_mini_dataset.py': EVERY,
    'python tools/train.py configs/ip_adapter/sd15_mini_dataset.py': MIM
    + 'test_train_reports_the_hardware_settings_first',
    'mim train diffengine_ipa configs/ip_adapter/sd15_mini_dataset.py '
    '--cfg-options model.pretrained_model_name_or_path=/models/stable-diffusion-v1-5 '
    'model.image_encoder.pretrained_model_name_or_path=/models/clip-vit-large-patch14': MIM
    + 'test_mim_train_after_pip_install',
    'torchrun --nproc_per_node 8 tools/train.py '
    'configs/ip_adapter/sd15_mini_dataset.py --launcher pytorch': 'tests/engine/test_distributed.py::'
    'test_two_processes_equal_one_at_the_combined_batch',
    'mim train diffengine_ipa configs/ip_adapter/sdxl_mini_dataset.py --launcher slurm '
    '--gpus 16 --gpus-per-node 8 --partition PARTITION': MIM
    + 'test_mim_slurm_builds_the_srun_command',
    'python tools/convert.py work_dirs/sd15_mini_dataset/iter_50.pth [--out PATH] '
    '[--format safetensors|bin]': 'tests/tools/test_convert.py::test_bin_layout_and_values',
    'python tools/convert.py work_dirs/sd15_mini_dataset': 'tests/tools/test_convert.py::test_safetensors_layout',
    'python tools/convert.py --info work_dirs/sd15_mini_dataset/ip_adapter.safetensors': 'tests/tools/test_published_adapters.py::test_info_describes_any_official_file',
    'python tools/infer.py CONFIG CKPT --image ref.jpg [--prompt TEXT] '
    '[--negative-prompt TEXT] [--scale 1.0] [--steps N] [--guidance-scale G] '
    '[--seed 0] [--num-images 1] [--height H --width W] [--out PATH] [--device D] '
    '[--dtype fp32|fp16|bf16] [--cfg-options ...]': 'tests/tools/test_diffusers_interop.py::'
    'test_infer_matches_diffusers_for_the_same_seed',
    'python tools/infer.py configs/ip_adapter/sdxl_mini_dataset.py '
    'work_dirs/sdxl_mini_dataset --base-model /models/my-sdxl-finetune '
    '--image style.jpg --scale style --prompt "a lighthouse at dusk" '
    '--out outputs/lighthouse.png': 'tests/apis/test_inferencer.py::test_another_base_checkpoint',
    'python tools/test.py CONFIG CKPT [CKPT ...] [--quick] [--out-dir DIR] '
    '[--cfg-options ...]': 'tests/tools/test_evaluate.py::test_quick_evaluation_runs_the_three_quick_cases',
    'mim test diffengine_ipa CONFIG --checkpoint CKPT [--quick]': MIM
    + 'test_mim_train_after_pip_install',
    'python tools/plot_loss.py work_dirs/sd15_mini_dataset': 'tests/tools/test_evaluate.py::test_plot_loss_from_a_real_run',
    'mim train diffengine_ipa configs/ip_adapter/sd15_mini_dataset_finetune.py': EVERY,
    'python tools/convert.py output/checkpoint-50000': 'tests/tools/test_published_adapters.py::test_official_script_checkpoints_convert',
    'python tools/convert.py output/checkpoint-50000 --config '
    'configs/ip_adapter/sd15_mini_dataset.py': 'tests/tools/test_published_adapters.py::test_official_script_checkpoints_convert',
    'mim train diffengine_ipa configs/ip_adapter/sd15_mini_dataset_plus.py': EVERY,
    'python tools/cache_embeddings.py configs/ip_adapter/sd15_mini_dataset_fast.py': EVERY,
    'mim train diffengine_ipa configs/ip_adapter/sd15_mini_dataset_fast.py': EVERY,
    'python tools/benchmark.py --family {tiny_sd15,mid_sd15,sd15,sdxl,sd35_large,'
    'flux1_dev,...} [--batch B] [--resolution R] [--dtype auto|fp32|bf16|fp16] '
    '[--channels-last auto|on|off] [--steps N] [--infer-steps 30] [--compile] '
    '[--gradient-checkpointing] [--out benchmarks/FILE.json]': 'tests/benchmarks/test_benchmark.py::test_benchmark_tiny_emits_json',
    'mim train diffengine_ipa configs/ip_adapter/sd15_mini_dataset.py --cfg-options '
    'train_dataloader.dataset.ann_file=/data/mine/data.json '
    'train_dataloader.batch_size=8': EVERY,
    'mim train diffengine_ipa configs/ip_adapter/sdxl_photos_stage1_512.py --launcher '
    'pytorch --gpus 8 --cfg-options train_dataloader.dataset.ann_file=/data/photos': TWO_STAGE,
    'python tools/convert.py work_dirs/sdxl_photos_stage1_512': TWO_STAGE,
    'mim train diffengine_ipa configs/ip_adapter/sdxl_photos_stage2_buckets.py '
    '--launcher pytorch --gpus 8 --cfg-options '
    'train_dataloader.dataset.ann_file=/data/photos': TWO_STAGE,
    'python tools/convert.py work_dirs/sdxl_photos_stage2_buckets --ema': 'tests/engine/test_adapter_ema.py::'
    'test_ema_of_the_adapter_only_is_saved_and_exported',
    'python tools/estimate_memory.py --family flux1_dev --resolution 1024 '
    '--batch 1 2 --gpu-memory 80': skip(
        'a full-size model (minutes, ~40 GB of host memory); '
        'tests/apis/test_memory_estimate.py runs the estimate on the tiny '
        'and DiT architectures'
    ),
    'python tools/estimate_memory.py --family sd35_large --resolution 512 '
    '--batch 1 2': skip('as the FLUX.1 estimate'),
    # docs/faceid.md: the tests run prepare_faces with TinyFaceEmbedder in
    # place of insightface's buffalo_l (no face weights can be downloaded)
    'pip install -c requirements/constraints.txt -r requirements/faces.txt': skip(
        'an extra (insightface, onnxruntime); the suite runs the face path on '
        'TinyFaceEmbedder, which needs neither'
    ),
    'python tools/prepare_faces.py /data/people/data.jsonl': FACES
    + 'test_faces_are_embedded_counted_named_and_reused',
    'python tools/prepare_faces.py /data/people/data.jsonl --largest --out '
    '/data/people/faces.jsonl': FACES
    + 'test_faces_are_embedded_counted_named_and_reused',
    'python tools/prepare_faces.py photos --embedder TinyFaceEmbedder': FACES
    + 'test_a_folder_of_captioned_photos_and_errors',
    'mim train diffengine_ipa configs/ip_adapter/sd15_mini_dataset.py --gpus 8 '
    '--launcher pytorch': skip(
        'needs 8 GPUs; the same launch with 2 CPU '
        'processes is tests/engine/test_distributed.py'
    ),
}


def page_paths() -> list[str]:
    """The pages whose commands are checked, relative to the repository."""
    paths = []
    for pattern in PAGES:
        paths += sorted(glob.glob(osp.join(REPO, pattern)))
    return [osp.relpath(p, REPO) for p in paths]


def page_commands(page: str) -> list[str]:
    """Each command of a page's bash blocks: continuation lines joined,
    comments and repeated spaces removed."""
    with open(osp.join(REPO, page), encoding='utf-8') as f:
        text = f.read()
    commands = []
    for block in re.findall(r'```(?:bash|sh|shell|console)\n(.*?)```', text, re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = re.sub(r'\s+#.*$', '', line.strip())
            if line and not line.startswith('#'):
                commands.append(re.sub(r'\s+', ' ', line))
    return commands


def test_every_command_is_run_or_skipped_with_a_reason():
    found = {}
    for page in page_paths():
        for command in page_commands(page):
            found.setdefault(command, page)
    unlisted = [f'{page}: {c}' for c, page in found.items() if c not in COMMANDS]
    assert not unlisted, (
        'commands neither run by a test nor skipped with a '
        'reason in COMMANDS (tests/test_readme.py):\n' + '\n'.join(unlisted)
    )
    stale = [c for c in COMMANDS if c not in found]
    assert not stale, 'in COMMANDS but on no page:\n' + '\n'.join(stale)
    assert all(target != SKIPPED for target in COMMANDS.values())


def test_the_named_tests_exist():
    for target in set(COMMANDS.values()):
        if target.startswith(SKIPPED):
            continue
        if '::' not in target:
            assert osp.isfile(osp.join(REPO, target)), target
            continue
        path, name = target.split('::')
        with open(osp.join(REPO, path), encoding='utf-8') as f:
            names = {
                node.name
                for node in ast.walk(ast.parse(f.read()))
                if isinstance(node, ast.FunctionDef)
            }
        assert name in names, target


def test_relative_links_name_files_that_exist():
    broken = []
    for page in page_paths():
        with open(osp.join(REPO, page), encoding='utf-8') as f:
            text = f.read()
        for target in re.findall(r'\]\(([^)\s]+)\)', text):
            if re.match(r'[a-z]+:', target) or target.startswith('#'):
                continue
            path = target.split('#')[0]
            if not osp.exists(osp.join(REPO, osp.dirname(page), path)):
                broken.append(f'{page}: {target}')
    assert not broken, 'links to missing files:\n' + '\n'.join(broken)


def test_readme_is_short():
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        assert len(f.read().splitlines()) <= 200, 'the reference goes to docs/'
