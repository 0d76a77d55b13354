# The shapes world's pairs and held-out cases for FaceID: each record's
# face_embedding is its reference's (the "face photo") embedding by the
# world's CLIP vision tower, 64-d (tools/prepare_faces.py --embedder
# ShapesFaceEmbedder, see docs/faceid.md). Judged as the other shapes leaves.
_base_ = ['./shapes_world.py', './shapes_world_eval.py']

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadFaceEmbedding', crop=False, dim=64),
    dict(type='ResizeShortEdge'),
    dict(type='CenterCrop'),
    dict(type='ToVAEInput'),
    dict(type='PackInputs', input_keys=('pixel_values', 'text', 'face_embeds')),
]
eval_pipeline = [
    dict(type='LoadImage'),
    dict(type='LoadFaceEmbedding', crop=False, dim=64),
    dict(
        type='PackInputs',
        input_keys=('img', 'prompt', 'scale', 'seed', 'face_embeds'),
        meta_keys=('case_id', 'img_path', 'text'),
    ),
]
train_dataloader = dict(
    dataset=dict(
        ann_file='work_dirs/shapes_world/pairs/data_faces.jsonl',
        pipeline=train_pipeline,
    )
)
val_dataloader = dict(
    dataset=dict(
        ann_file='work_dirs/shapes_world/heldout/cases_faces.jsonl',
        pipeline=eval_pipeline,
    )
)
test_dataloader = dict(
    dataset=dict(
        ann_file='work_dirs/shapes_world/heldout/cases_faces.jsonl',
        pipeline=eval_pipeline,
    )
)
