"""The Markdown report of a benchmarks/gpu/run.py run: one section per step,
from whatever each step saved (a step that was cut short shows what it had)."""

from typing import Any

__all__ = ['markdown']


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}g}'
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(_num(v) for v in row) + ' |' for row in rows]
    return lines + ['']


def _environment(r: dict) -> list[str]:
    lines = [
        f'- device: {r.get("device")}; CUDA: {r.get("cuda")}',
        f'- nvidia-smi: {r.get("nvidia_smi", "-")}',
        f'- versions: {r.get("versions")}',
        f'- matmul peak measured: {_num(r.get("matmul_peak_tflops"))} '
        f'TFLOP/s; spec dense bf16: {_num(r.get("spec_bf16_peak_tflops"))}',
    ]
    return lines + [f'- {line}' for line in r.get('hardware_settings', [])] + ['']


def _cuda_tests(r: dict) -> list[str]:
    outcomes = r.get('outcomes', {})
    rows = [[test, status] for test, status in outcomes.items()]
    return [f'exit code {r.get("exit_code")}: `{r.get("command")}`', ''] + _table(
        ['test', 'outcome'], rows
    )


def _mim_train(r: dict) -> list[str]:
    rows = []
    for name in ('amp', 'bf16'):
        run = r.get(name)
        if run:
            amp = next(
                (line for line in run['hardware'] if line.startswith('hardware.amp')),
                '-',
            )
            losses = run['losses']
            rows.append(
                [
                    f'`{run["command"]}`',
                    run['exit_code'],
                    round(run['seconds']),
                    amp,
                    len(losses),
                    losses[-1] if losses else None,
                ]
            )
    return _table(
        ['command', 'exit', 's', 'precision chosen', 'logged losses', 'last loss'], rows
    )


def _train_sd15(r: dict) -> list[str]:
    from benchmarks.benchmark import format_rows

    lines = [format_rows(r['rows']), ''] if r.get('rows') else []
    rows = [
        [
            b['batch'],
            'out of memory' if b.get('oom') else b['imgs_per_s'],
            b.get('peak_mem_gb'),
            b.get('achieved_tflops'),
        ]
        for b in r.get('largest_batch', [])
    ]
    if rows:
        lines += ['Fast path, growing batch:', ''] + _table(
            ['batch', 'img/s', 'peak GB', 'achieved TFLOP/s'], rows
        )
    return lines


def _step_rows(r: dict) -> list[str]:
    rows = [
        [
            row['gradient_checkpointing'],
            row['inputs'],
            row['batch'],
            row['resolution'],
            'out of memory' if row.get('oom') else row.get('step_s'),
            row.get('peak_mem_gb'),
        ]
        for row in r.get('rows', [])
    ]
    head = [f'family: {r["family"]}', ''] if 'family' in r else []
    return head + _table(
        ['gradient checkpointing', 'inputs', 'batch', 'res', 's/step', 'peak GB'], rows
    )


def _inference(r: dict) -> list[str]:
    rows = [
        [
            row['family'],
            row['resolution'],
            row['dtype'],
            row['steps'],
            row.get('ours_s'),
            row.get('diffusers_s'),
            row.get('ours_over_diffusers'),
            row.get('max_pixel_difference'),
            row.get('compile_s'),
            row.get('ours_compiled_s'),
            row.get('diffusers_compiled_s'),
        ]
        for row in r.get('rows', [])
    ]
    return _table(
        [
            'family',
            'res',
            'dtype',
            'steps',
            'kit s',
            'diffusers s',
            'kit / diffusers',
            'max pixel diff',
            'compile s',
            'kit compiled s',
            'diffusers compiled s',
        ],
        rows,
    )


def _memory_modes(r: dict) -> list[str]:
    return _table(
        [
            'family',
            'res',
            'quantize',
            'encoders',
            'compile',
            'ckpt',
            'first 2 steps s',
            'step s',
            'peak GB',
        ],
        [
            [
                x['family'],
                x['resolution'],
                x['quantize'] or '-',
                x['encoders'],
                x['compile'] or '-',
                x['gradient_checkpointing'],
                'OOM' if x['oom'] else x.get('error') or _num(x['first_steps_s']),
                _num(x.get('step_s')),
                _num(x.get('peak_mem_gb')),
            ]
            for x in r['rows']
        ],
    )


SECTIONS = dict(
    environment=_environment,
    cuda_tests=_cuda_tests,
    mim_train=_mim_train,
    train_sd15=_train_sd15,
    sdxl_memory=_step_rows,
    inference=_inference,
    largest_family=_step_rows,
    memory_modes=_memory_modes,
)


def markdown(run: dict) -> str:
    """The report of a run (``gpu_run.json``'s content)."""
    lines = [
        f'# GPU run: {run["device"]}{" (tiny)" if run["tiny"] else ""}, '
        f'{run["started"]}',
        '',
        f'{run.get("seconds", 0):.0f} s of {run["deadline_s"]:.0f}.',
        '',
    ]
    lines += _table(
        ['step', 'status', 's'],
        [
            [name, entry['status'], entry['seconds']]
            for name, entry in run['steps'].items()
        ],
    )
    for name, entry in run['steps'].items():
        result = entry.get('result')
        if not result:
            continue
        lines += [f'## {name}', '']
        try:
            lines += SECTIONS[name](result)
        except (KeyError, TypeError) as err:  # a step cut short
            lines += [f'(incomplete: {err!r})', '']
    return '\n'.join(lines)
