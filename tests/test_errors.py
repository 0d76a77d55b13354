"""One-line errors, also when a DataLoader worker re-raises them."""

import pytest

from diffengine_ipa.errors import DatasetError, ImageError, run_tool


def test_error_from_a_dataloader_worker_is_one_line(capsys):
    import pickle

    from torch._utils import ExceptionWrapper

    try:
        raise DatasetError('images/a.jpg: zero-byte file')
    except DatasetError:
        wrapped = ExceptionWrapper(where='in DataLoader worker process 0')
    with pytest.raises(SystemExit) as exit_:
        run_tool(wrapped.reraise)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == 'error: images/a.jpg: zero-byte file\n'
    error = pickle.loads(pickle.dumps(ImageError('a.png', 'not an image')))
    assert str(error) == 'a.png: not an image' and error.reason == 'not an image'
