"""What the page shows of a run, from its status."""

from diffengine_ipa.webui import views
from diffengine_ipa.webui.train_process import TrainStatus


def test_progress_bar_text():
    running = TrainStatus(state='running', done=3, total=12, eta='0:00:09')
    html = views.progress_html(running)
    assert '<progress value="3" max="12">' in html
    assert 'iteration 3 / 12 (25 %) · ETA 0:00:09' in html
    finished = TrainStatus(state='finished', done=12, total=12, eta='0:00:00')
    assert 'iteration 12 / 12 (100 %)</span>' in views.progress_html(finished)
    assert 'waiting for the first iteration' in views.progress_html(
        TrainStatus(state='running')
    )
    assert (
        views.status_markdown('r', TrainStatus(state='stopped', sample_step=5))
        == '**runs/r: stopped** · samples of step 5'
    )


def test_the_loss_table_is_numeric_even_when_empty():
    """The plot reads its axes' types from the columns: an empty object
    column would make them categorical for good."""
    for losses in ([], [(1, 1.2), (2, 1.1)]):
        table = views.loss_table(TrainStatus(losses=losses))
        assert list(table.columns) == ['iteration', 'loss']
        assert str(table.dtypes['iteration']) == 'int64'
        assert str(table.dtypes['loss']) == 'float64'
    assert table.values.tolist() == [[1, 1.2], [2, 1.1]]


def test_reference_gain_in_the_status_and_its_table():
    status = TrainStatus(
        state='running',
        gains=[(25, -0.01, 0.002)],
        reference_warning='reference gain -0.0100 ≤ 0 for 3 '
        'validations in a row: the adapter is not using its '
        'reference',
    )
    text = views.status_markdown('r', status)
    assert 'reference gain -0.0100 (no reference +0.0020) at iteration 25' in text
    assert text.endswith('the adapter is not using its reference')
    table = views.gain_table(status)
    assert table.values.tolist() == [[25, -0.01, 'shuffled'], [25, 0.002, 'none']]
    assert str(views.gain_table(TrainStatus()).dtypes['gain']) == 'float64'
