"""The page: Data, Train, Generate, Evaluate and Files tabs, each wired to the
plain callbacks of this package (Gradio only here)."""

import functools
import inspect
from collections.abc import Callable

import gradio as gr

from ..dtypes import DTYPE_NAMES
from ..errors import UserError
from . import data, evaluation, files, views
from .base_models import is_tiny, write_tiny_models
from .family_choices import (
    config_choices,
    config_faceid,
    default_config,
    face_embedders,
    preset_label,
    scale_presets,
)
from .generation import InferencerCache, face_fields, generate, generation_defaults
from .train_options import PRECISIONS, TrainSettings, config_defaults
from .train_process import TrainingRuns, TrainStatus, is_training
from .workspace import Workspace

__all__ = ['build_page']

DEFAULT_RUN = 'my_adapter'
CSS = '.train-progress progress {width: 100%; height: 1.2em}'


def shown(fn: Callable) -> Callable:
    """Show a :class:`UserError` as the page's error message (one line, no
    traceback); generators too."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args):
            try:
                yield from fn(*args)
            except UserError as err:
                raise gr.Error(str(err), print_exception=False) from None

        return generator

    @functools.wraps(fn)
    def wrapper(*args):
        try:
            return fn(*args)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None

    return wrapper


def _choices(values: list[str], current: str | None = None) -> dict:
    value = current if current in values else (values[0] if values else None)
    return gr.update(choices=values, value=value)


class Page:
    """The page's state (workspace, training processes, loaded inferencers)
    and the glue from widgets to callbacks."""

    def __init__(
        self,
        ws: Workspace,
        runs: TrainingRuns | None = None,
        cache: InferencerCache | None = None,
    ) -> None:
        self.ws = ws
        self.runs = runs or TrainingRuns()
        self.cache = cache or InferencerCache()

    # Data
    def _dataset_view(self, folder: str, rows: list[list]) -> tuple:
        return (
            rows,
            views.dataset_summary(self.ws, folder, rows),
            views.dataset_gallery(self.ws, folder, rows),
        )

    def load_dataset(self, folder: str) -> tuple:
        return self._dataset_view(folder, data.dataset_rows(self.ws, folder))

    def add_images(self, folder: str, uploads: list[str] | None, caption: str) -> tuple:
        if not uploads:
            raise UserError('choose images to upload first')
        rows = data.add_images(self.ws, folder, uploads, caption)
        return (*self._dataset_view(folder, rows), None, '')

    def scan_folder(self, folder: str) -> tuple:
        return self._dataset_view(folder, data.scan_folder(self.ws, folder))

    def save_rows(self, folder: str, table: list[list]) -> tuple:
        rows = [list(row) for row in (table or [])]
        return self._dataset_view(folder, data.save_rows(self.ws, folder, rows))

    # Train
    def settings(self, *knobs) -> TrainSettings:
        """The Train tab's knobs, in ``TrainSettings``' field order (no face
        embedder chosen: insightface's, '')."""
        settings = TrainSettings(*knobs)
        settings.face_embedder = settings.face_embedder or ''
        return settings

    def prepare_faces(self, settings: TrainSettings) -> str:
        """A FaceID run's dataset with its faces (reused when unchanged):
        the summary, a line before the Start message; '' for other runs."""
        if not (settings.dataset and config_faceid(settings.config)):
            return ''
        return data.prepare_faces(self.ws, settings.dataset, settings.face_embedder)

    def write_tiny(self, config: str) -> str:
        if not is_tiny(config):
            return f'{config} loads real models, not the tiny ones'
        written = write_tiny_models(self.ws, config)
        return (
            ('wrote ' + ', '.join(written))
            if written
            else ('the tiny models are already in models/tiny_models')
        )

    def start(self, run: str, *knobs) -> str:
        settings = self.settings(*knobs)
        self.runs.refuse_if_running(self.ws, run)  # before writing models
        notes = [
            self.write_tiny(settings.config) if is_tiny(settings.config) else '',
            self.prepare_faces(settings),
        ]
        self.runs.start(self.ws, run, settings)
        note = ''.join(n + '\n' for n in notes if n)
        return f'{note}started runs/{run}: tools/train.py (the command is below)'

    def resume(self, run: str, *knobs) -> str:
        settings = self.settings(*knobs)
        self.runs.refuse_if_running(self.ws, run)
        note = self.prepare_faces(settings)
        self.runs.resume(self.ws, run, settings)
        return (note + '\n' if note else '') + (
            f'resumed runs/{run} from its last checkpoint (--resume)'
        )

    def stop(self, run: str) -> str:
        return self.runs.stop(self.ws, run)

    def run_choices(self) -> dict:
        """The Run field on opening the page: the workspace's runs (read
        from disk, so a restarted page server finds them), showing a running
        one, else the newest, else a new run's default name."""
        names = self.ws.runs()
        running = [n for n in names if is_training(self.ws.run_dir(n))]
        return gr.update(choices=names, value=(running or names or [DEFAULT_RUN])[0])

    def run_list(self, current: str) -> dict:
        """The Run field after a Start: the runs now on disk, ``current`` kept."""
        return gr.update(choices=self.ws.runs(), value=current)

    def refresh(self, run: str, seen: tuple | None) -> tuple:
        try:
            status = self.runs.status(self.ws, run)
        except UserError:
            return (gr.skip(),) * 7 + (seen,)
        key = (
            status.state,
            status.done,
            len(status.losses),
            len(status.gains),
            status.sample_step,
            status.log_tail[-200:],
            run,
        )
        if key == seen:
            return (gr.skip(),) * 7 + (seen,)
        return (
            views.status_markdown(run, status),
            views.progress_html(status),
            views.loss_table(status),
            views.gain_table(status),
            views.sample_gallery(status),
            status.log_tail,
            status.command,
            key,
        )

    # Generate, Evaluate, Files
    def adapter_lists(self) -> tuple:
        adapters = files.adapters(self.ws)
        return _choices(adapters), _choices(adapters)

    def models_of(self, adapter: str | None) -> tuple:
        """The config, model folders and face embedder of the adapter's run."""
        found = files.run_models(self.ws, adapter) if adapter else None
        if not found:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        embedder = found['face_embedder'] or gr.skip()
        return found['config'], found['base_model'], found['image_encoder'], embedder

    def face_view(self, config: str) -> tuple:
        """The Generate tab's FaceID fields for ``config``: shown or hidden."""
        shown = face_fields(config)
        return (
            gr.update(visible=shown['face']),
            gr.update(visible=shown['crop']),
            gr.update(visible=shown['s_scale']),
        )

    def generate(
        self,
        config,
        adapter,
        uploads,
        ref_paths,
        prompt,
        negative,
        scale,
        preset,
        steps,
        guidance,
        seed,
        num_images,
        base_model,
        image_encoder,
        true_cfg=None,
        face=None,
        face_embeds=None,
        face_crop=None,
        face_embedder='',
        s_scale=None,
        lora_scale=1.0,
    ) -> tuple:
        references = list(uploads or []) + [
            line.strip() for line in (ref_paths or '').splitlines() if line.strip()
        ]
        paths = generate(
            self.ws,
            self.cache,
            config,
            adapter,
            references,
            prompt,
            negative,
            scale,
            preset,
            int(steps) if steps else None,
            guidance,
            int(seed or 0),
            int(num_images),
            base_model,
            image_encoder,
            true_cfg or None,
            face or '',
            face_embeds or '',
            face_crop or '',
            face_embedder or '',
            s_scale,
            1.0 if lora_scale is None else lora_scale,
        )
        return paths, paths

    def evaluate(self, config, adapter, mode, base_model, image_encoder):
        for update in evaluation.run_evaluation(
            self.ws, config, adapter, mode == 'quick', base_model, image_encoder
        ):
            if not update.done:
                yield update.log, gr.skip(), gr.skip(), gr.skip(), gr.skip()
                continue
            where = (
                f'report: `{self.ws.relative(update.out_dir)}`'
                if update.report
                else '**the evaluation failed** (log above)'
            )
            yield (update.log, update.rows, update.grids, update.tradeoff, where)

    def file_lists(self) -> tuple:
        return _choices(files.checkpoints(self.ws)), _choices(
            files.adapter_files(self.ws)
        )

    def convert(self, checkpoint: str, fmt: str, dtype: str) -> tuple:
        if not checkpoint:
            raise UserError('choose a checkpoint to convert')
        output, written = files.convert(self.ws, checkpoint, fmt, dtype)
        adapters = files.adapter_files(self.ws)
        current = self.ws.relative(written) if written else None
        return output, _choices(adapters, current)

    def file_info(self, path: str | None) -> tuple:
        if not path:
            return '', gr.update(value=None, interactive=False)
        return files.info(self.ws, path), gr.update(
            value=self.ws.resolve(path, must_exist=True), interactive=True
        )


def build_page(
    ws: Workspace,
    runs: TrainingRuns | None = None,
    cache: InferencerCache | None = None,
) -> gr.Blocks:
    """The page on workspace ``ws`` (``Blocks.launch`` serves it)."""
    page = Page(ws, runs, cache)
    configs = config_choices()  # every family's, from the registry
    default = default_config()
    knobs = config_defaults(default)
    gen_defaults = generation_defaults(default)
    embedders = face_embedders()  # the registry's, insightface first
    faces = face_fields(default)
    with gr.Blocks(title='diffengine_ipa', analytics_enabled=False) as demo:
        gr.Markdown(
            '# diffengine_ipa · IP-Adapter training\n'
            f'Workspace: `{ws.root}` — every file the page reads or '
            'writes is in it.'
        )
        with gr.Accordion('Local model folders (optional)', open=False):
            base_model = gr.Textbox(
                label='Base model folder in the workspace',
                placeholder="empty = the config's",
            )
            image_encoder = gr.Textbox(
                label='Image encoder folder in the workspace',
                placeholder="empty = the config's",
            )
        with gr.Tab('Data', id='data'):
            with gr.Row():
                folder = gr.Textbox(
                    'datasets/my_dataset',
                    label='Dataset folder',
                    elem_id='dataset-folder',
                    scale=3,
                )
                load = gr.Button('Load', scale=1)
                scan = gr.Button('Scan folder for images', scale=1)
            with gr.Row():
                uploads = gr.File(
                    file_count='multiple',
                    label='Images (and .txt captions of the same name)',
                    file_types=['image', '.txt'],
                    elem_id='upload-images',
                )
                with gr.Column():
                    caption = gr.Textbox(
                        label='Caption for these images',
                        lines=2,
                        elem_id='upload-caption',
                    )
                    add = gr.Button(
                        'Add to dataset', variant='primary', elem_id='add-images'
                    )
            summary = gr.Markdown(elem_id='dataset-summary')
            table = gr.Dataframe(
                headers=data.HEADERS,
                type='array',
                interactive=True,
                static_columns=[0, 2],
                label='Captions (edit the text, then Save)',
                elem_id='captions',
                wrap=True,
            )
            save = gr.Button('Save captions')
            preview = gr.Gallery(label='Images', columns=6, height=220)
        with gr.Tab('Train', id='train'):
            with gr.Row():
                config = gr.Dropdown(
                    configs, value=default, label='Config', elem_id='train-config'
                )
                run = gr.Dropdown(
                    [DEFAULT_RUN],
                    value=DEFAULT_RUN,
                    allow_custom_value=True,
                    label='Run name (runs/<name>: a new one, or one of the runs)',
                    elem_id='run-name',
                )
                dataset = gr.Textbox('datasets/my_dataset', label='Dataset folder')
                face_embedder = gr.Dropdown(
                    embedders,
                    value=embedders[0],
                    label='Face embedder (FaceID: finds the faces at Start)',
                    visible=faces['face'],
                    elem_id='train-face-embedder',
                )
            with gr.Row():
                epochs = gr.Number(
                    knobs['epochs'], label='Epochs', precision=0, elem_id='epochs'
                )
                lr = gr.Number(knobs['lr'], label='Learning rate')
                resolution = gr.Number(
                    knobs['resolution'], label='Resolution', precision=0
                )
                batch = gr.Number(knobs['batch_size'], label='Batch', precision=0)
                precision = gr.Radio(list(PRECISIONS), value='fp32', label='Precision')
                sample_every = gr.Number(
                    knobs['sample_every'],
                    precision=0,
                    label='Samples every N epochs',
                    elem_id='sample-every',
                )
                checkpoint_every = gr.Number(
                    knobs['checkpoint_every'],
                    precision=0,
                    label='Checkpoint every N iterations',
                )
            with gr.Row():
                tiny = gr.Button('Write tiny models')
                start = gr.Button('Start', variant='primary', elem_id='start')
                stop = gr.Button('Stop', variant='stop', elem_id='stop')
                resume = gr.Button('Resume', elem_id='resume')
            message = gr.Textbox(label='Message', lines=2, elem_id='train-message')
            status = gr.Markdown(elem_id='train-status')
            progress = gr.HTML(
                views.progress_html(TrainStatus()), elem_id='train-progress'
            )
            with gr.Row():
                loss = gr.LinePlot(
                    x='iteration',
                    y='loss',
                    label='Loss',
                    elem_id='loss-curve',
                    height=260,
                )
                gain = gr.LinePlot(
                    x='iteration',
                    y='gain',
                    color='kind',
                    label='Reference gain (> 0: the adapter uses its reference)',
                    elem_id='gain-curve',
                    height=260,
                )
                samples = gr.Gallery(
                    label='Latest samples (reference | generated)',
                    columns=3,
                    height=260,
                    elem_id='train-samples',
                )
            log = gr.Textbox(
                label='Log (the last lines)',
                lines=15,
                max_lines=15,
                autoscroll=True,
                elem_id='train-log',
            )
            command = gr.Textbox(label='The same run from a shell', lines=2)
        with gr.Tab('Generate', id='generate') as generate_tab:
            with gr.Row():
                gen_config = gr.Dropdown(configs, value=default, label='Config')
                gen_adapter = gr.Dropdown(
                    [], label='Adapter (checkpoint or file)', elem_id='gen-adapter'
                )
                gen_refresh = gr.Button('↻', scale=0, min_width=40)
            with gr.Row():
                references = gr.File(
                    file_count='multiple',
                    file_types=['image'],
                    label='Reference image(s)',
                    elem_id='references',
                )
                ref_paths = gr.Textbox(
                    label='…or reference paths in the workspace, one a line', lines=3
                )
            with gr.Group(visible=faces['face']) as face_box:
                with gr.Row():
                    face = gr.File(
                        file_types=['image'],
                        label='FaceID: a photo with one face',
                        elem_id='face-photo',
                    )
                    face_embeds = gr.File(
                        file_types=['.npy'],
                        label='…or saved face embeddings (.npy)',
                        elem_id='face-embeds',
                    )
                    face_crop = gr.File(
                        file_types=['image'],
                        label='…and their aligned face crop (Plus, PlusV2)',
                        visible=faces['crop'],
                        elem_id='face-crop',
                    )
                with gr.Row():
                    gen_face_embedder = gr.Dropdown(
                        embedders,
                        value=embedders[0],
                        label='Face embedder (the one the data was prepared with)',
                        elem_id='gen-face-embedder',
                    )
                    s_scale = gr.Slider(
                        0,
                        2,
                        value=1.0,
                        step=0.05,
                        label='Shortcut scale (s-scale, PlusV2)',
                        visible=faces['s_scale'],
                        elem_id='gen-s-scale',
                    )
                    lora_scale = gr.Slider(
                        0,
                        1,
                        value=1.0,
                        step=0.05,
                        label='LoRA scale',
                        elem_id='gen-lora-scale',
                    )
            prompt = gr.Textbox(label='Prompt', elem_id='prompt')
            negative = gr.Textbox(label="Negative prompt (empty = the config's)")
            with gr.Row():
                scale = gr.Slider(0, 2, value=1.0, step=0.05, label='Scale')
                preset = gr.Radio(
                    scale_presets(default),
                    value='scale',
                    label=preset_label(),
                    elem_id='gen-preset',
                )
            with gr.Row():
                steps = gr.Number(
                    gen_defaults['steps'],
                    precision=0,
                    minimum=1,
                    label='Steps',
                    elem_id='gen-steps',
                )
                guidance = gr.Number(gen_defaults['guidance_scale'], label='Guidance')
                true_cfg = gr.Number(
                    0,
                    minimum=0,
                    elem_id='gen-true-cfg',
                    label='True CFG (FLUX; 0 = off, e.g. 4)',
                )
                seed = gr.Number(0, precision=0, label='Seed')
                num_images = gr.Slider(1, 8, value=1, step=1, label='Images')
            gen_button = gr.Button('Generate', variant='primary', elem_id='generate')
            gallery = gr.Gallery(
                label='Generated',
                columns=4,
                height=300,
                buttons=['download', 'fullscreen'],
                elem_id='gen-gallery',
            )
            gen_files = gr.File(label='Download', file_count='multiple')
        with gr.Tab('Evaluate', id='evaluate') as evaluate_tab:
            with gr.Row():
                ev_config = gr.Dropdown(configs, value=default, label='Config')
                ev_adapter = gr.Dropdown([], label='Adapter (checkpoint or file)')
                mode = gr.Radio(['quick', 'full'], value='quick', label='Mode')
            ev_button = gr.Button('Evaluate', variant='primary', elem_id='evaluate')
            ev_where = gr.Markdown(elem_id='eval-where')
            report = gr.Dataframe(
                headers=evaluation.REPORT_HEADERS,
                type='array',
                interactive=False,
                label='Report',
                elem_id='eval-table',
            )
            with gr.Row():
                grids = gr.Gallery(
                    label='Grids (reference | each scale)', columns=1, height=320
                )
                tradeoff = gr.Image(
                    label='Scale trade-off (full mode)', type='filepath', height=320
                )
            ev_log = gr.Textbox(label='Log (the last lines)', lines=15, max_lines=15)
        with gr.Tab('Files', id='files') as files_tab:
            with gr.Row():
                checkpoint = gr.Dropdown([], label='Checkpoint')
                fmt = gr.Radio(
                    ['safetensors', 'bin'], value='safetensors', label='Format'
                )
                dtype = gr.Dropdown(
                    ['', *DTYPE_NAMES],
                    value='',
                    label='Cast to (empty = keep)',
                )
                convert = gr.Button('Convert', variant='primary')
            with gr.Row():
                adapter_file = gr.Dropdown([], label='Adapter file')
                download = gr.DownloadButton('Download', interactive=False)
            file_text = gr.Textbox(label='tools/convert.py', lines=12)
        timer = gr.Timer(1.5)
        seen = gr.State(None)

        # Data
        load.click(shown(page.load_dataset), folder, [table, summary, preview])
        scan.click(shown(page.scan_folder), folder, [table, summary, preview])
        add.click(
            shown(page.add_images),
            [folder, uploads, caption],
            [table, summary, preview, uploads, caption],
        )
        save.click(shown(page.save_rows), [folder, table], [table, summary, preview])
        folder.change(lambda value: value, folder, dataset)
        # Train
        config.change(
            lambda name: (
                *config_defaults(name).values(),
                gr.update(visible=face_fields(name)['face']),
            ),
            config,
            [
                epochs,
                lr,
                resolution,
                batch,
                sample_every,
                checkpoint_every,
                face_embedder,
            ],
        )
        train_knobs = [
            config,
            dataset,
            epochs,
            lr,
            resolution,
            batch,
            precision,
            sample_every,
            checkpoint_every,
            base_model,
            image_encoder,
            face_embedder,
        ]
        tiny.click(shown(page.write_tiny), config, message)
        start.click(shown(page.start), [run, *train_knobs], message).success(
            page.run_list, run, run
        )
        resume.click(shown(page.resume), [run, *train_knobs], message)
        stop.click(shown(page.stop), run, message)
        timer.tick(
            page.refresh,
            [run, seen],
            [status, progress, loss, gain, samples, log, command, seen],
            show_progress='hidden',
            queue=False,
        )
        # Generate, Evaluate
        for tab in (generate_tab, evaluate_tab):
            tab.select(page.adapter_lists, None, [gen_adapter, ev_adapter])
        gen_refresh.click(page.adapter_lists, None, [gen_adapter, ev_adapter])
        gen_adapter.change(
            page.models_of,
            gen_adapter,
            [gen_config, base_model, image_encoder, gen_face_embedder],
        )
        ev_adapter.change(
            lambda adapter: page.models_of(adapter)[:3],
            ev_adapter,
            [ev_config, base_model, image_encoder],
        )
        gen_config.change(page.face_view, gen_config, [face_box, face_crop, s_scale])
        gen_config.change(
            lambda name: (
                generation_defaults(name)['steps'],
                generation_defaults(name)['guidance_scale'],
                gr.update(choices=scale_presets(name), value='scale'),
            ),
            gen_config,
            [steps, guidance, preset],
        )
        gen_button.click(
            shown(page.generate),
            [
                gen_config,
                gen_adapter,
                references,
                ref_paths,
                prompt,
                negative,
                scale,
                preset,
                steps,
                guidance,
                seed,
                num_images,
                base_model,
                image_encoder,
                true_cfg,
                face,
                face_embeds,
                face_crop,
                gen_face_embedder,
                s_scale,
                lora_scale,
            ],
            [gallery, gen_files],
        )
        ev_button.click(
            shown(page.evaluate),
            [ev_config, ev_adapter, mode, base_model, image_encoder],
            [ev_log, report, grids, tradeoff, ev_where],
        )
        # Files
        files_tab.select(page.file_lists, None, [checkpoint, adapter_file])
        convert.click(
            shown(page.convert), [checkpoint, fmt, dtype], [file_text, adapter_file]
        )
        adapter_file.change(shown(page.file_info), adapter_file, [file_text, download])
        demo.load(shown(page.load_dataset), folder, [table, summary, preview])
        demo.load(page.run_choices, None, run)
    return demo
