"""The hooks that shape the console: the first iterations logged, a bar
over the images validation and test generate."""

from types import SimpleNamespace

from diffengine_ipa.engine.hooks import GenerationProgressHook, ProgressLoggerHook


def test_generation_progress_bar(capsys):
    hook = GenerationProgressHook(always=True)
    runner = SimpleNamespace(val_dataloader=[0, 1, 2], test_dataloader=[0])
    hook.before_val_epoch(runner)
    for i in range(3):
        hook.after_val_iter(runner, i)
    hook.after_val_epoch(runner)
    err = capsys.readouterr().err
    assert 'validation: generating' in err and '/3 [' in err
    assert hook._bar is None
    GenerationProgressHook().before_test_epoch(runner)  # not a terminal
    assert capsys.readouterr().err == ''


def test_first_iterations_are_logged():
    lines = []
    hook = ProgressLoggerHook(interval=5, first_iters=3)
    runner = SimpleNamespace(
        iter=0,
        train_dataloader=list(range(10)),
        experiment_name='x',
        logger=SimpleNamespace(info=lines.append),
        log_processor=SimpleNamespace(
            get_log_after_iter=lambda r, i, m: ({}, f'iter {r.iter + 1}')
        ),
        visualizer=SimpleNamespace(add_scalars=lambda *a, **k: None),
    )
    hook.json_log_path = 'x.json'
    hook._start_iter = 0
    for batch_idx in range(10):
        runner.iter = batch_idx
        hook.after_train_iter(runner, batch_idx)
    assert [line for line in lines if line.startswith('iter')] == [
        'iter 1',
        'iter 2',
        'iter 3',
        'iter 5',
        'iter 10',
    ]
