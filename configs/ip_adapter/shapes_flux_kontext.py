# FLUX.1 Kontext-shaped base (FLUX.1's, fine-tuned on the shapes world to
# recolour a grey input image as its caption says), its adapter trained on the
# world's edit pairs (pairs/edits.json: the target in grey as the input image,
# the caption naming only the shape): the colour can only come from the
# reference. Judged on heldout/edit_cases.json: each reference with a grey
# scene of its shape elsewhere to edit. Batch 64, lr 1e-3, 600 steps.
_base_ = ['./shapes_flux.py']  # FLUX.1 Kontext is FLUX.1's model and call
model = dict(
    pretrained_model_name_or_path='work_dirs/shapes_world/flux_kontext',
    family=dict(type='FluxKontext'),
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/shapes_world/flux_kontext/image_encoder'
    ),
)
_inputs = ('pixel_values', 'reference_pixel_values', 'text', 'input_pixel_values')
train_dataloader = dict(
    dataset=dict(
        ann_file='work_dirs/shapes_world/pairs/edits.json',
        pipeline=[
            dict(type='LoadImage'),  # the target, the reference, the input image
            dict(type='PreprocessReference'),
            dict(type='ResizeShortEdge'),
            dict(type='CenterCrop'),
            dict(type='ToVAEInput'),
            dict(type='PackInputs', input_keys=_inputs),
        ],
    )
)
_eval_pipeline = [
    dict(type='LoadImage'),  # the reference and the image to edit
    dict(
        type='PackInputs',
        input_keys=('img', 'prompt', 'scale', 'seed', 'input_img'),
        meta_keys=('case_id', 'img_path', 'text'),
    ),
]
_cases = 'work_dirs/shapes_world/heldout/edit_cases.json'
val_dataloader = dict(dataset=dict(ann_file=_cases, pipeline=_eval_pipeline))
test_dataloader = val_dataloader
