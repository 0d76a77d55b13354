"""``tools/train.py`` that pauses at one moment and says so in a marker
file, for a test to press Ctrl-C (SIGINT) right then.

    python paused_train.py POINT MARKER tools/train.py ARGS...

POINT: ``start`` (model built, before iteration 1), ``training`` (in
iteration 5), ``validation`` (in the first validation batch), ``saving``
(inside the second checkpoint's ``torch.save``).
"""

import runpy
import sys
import time

import torch
from mmengine.runner import EpochBasedTrainLoop, Runner, ValLoop

point, marker, script, *args = sys.argv[1:]
calls = {'count': 0}


def pause_at(owner, name: str, on_call: int) -> None:
    original = getattr(owner, name)

    def paused(*a, **kw):
        calls['count'] += 1
        if calls['count'] == on_call:
            open(marker, 'w').close()
            time.sleep(120)  # the test's SIGINT lands here
        return original(*a, **kw)

    setattr(owner, name, paused)


if point == 'start':
    pause_at(Runner, 'train', 1)
elif point == 'training':
    pause_at(EpochBasedTrainLoop, 'run_iter', 5)
elif point == 'validation':
    pause_at(ValLoop, 'run_iter', 1)
elif point == 'saving':
    pause_at(torch, 'save', 2)
sys.argv = [script, *args]
runpy.run_path(script, run_name='__main__')
