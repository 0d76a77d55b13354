"""Install diffengine_ipa.

``pip install .`` copies ``tools/`` and ``configs/`` into
``diffengine_ipa/.mim/``, where ``mim train diffengine_ipa CONFIG`` finds the
train script and configs. ``pip install -e .`` serves ``python tools/*.py``
during development, but mim cannot find an editable install (it looks for the
package beside its metadata in site-packages).
"""

import os
import os.path as osp
import shutil

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'diffengine_ipa', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name: str) -> list[str]:
    with open(osp.join(HERE, 'requirements', name)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


def copy_mim_files() -> None:
    """Copy tools/, configs/ and data/ (the shapes world's shipped bases and
    adapters) into the package, where mim and an installed kit look for them."""
    mim_root = osp.join(HERE, 'diffengine_ipa', '.mim')
    for name in ('tools', 'configs', 'data'):
        source, target = osp.join(HERE, name), osp.join(mim_root, name)
        if not osp.isdir(source):  # building from an sdist: already copied
            continue
        if osp.islink(target) or osp.isfile(target):
            os.remove(target)
        elif osp.isdir(target):
            shutil.rmtree(target)
        shutil.copytree(
            source, target, ignore=shutil.ignore_patterns('__pycache__', '*.pyc')
        )


copy_mim_files()

with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='diffengine_ipa',
    version=read_version(),
    description='Train IP-Adapters for Stable Diffusion with MMEngine configs',
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(
        exclude=('configs', 'tools', 'tests', 'tests.*', 'benchmarks', 'benchmarks.*')
    ),
    include_package_data=False,
    package_data={'diffengine_ipa': ['.mim/**/*']},
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'tests': read_requirements('tests.txt'),
        'webui': read_requirements('webui.txt'),
        'tensorboard': read_requirements('tensorboard.txt'),
        'quant': read_requirements('quant.txt'),
        'faces': read_requirements('faces.txt'),
    },
    zip_safe=False,
)
