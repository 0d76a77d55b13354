# qwen_image_mini_dataset on the tiny Qwen-Image-shaped family (tiny CLIP
# vision tower) at 64 px, in fp32: seconds on a CPU.
# Write the family first: python tools/make_tiny_models.py
_base_ = ['./qwen_image_mini_dataset.py', '../_base_/tiny_transformer_run.py']

model = dict(
    _base_._tiny_model,
    pretrained_model_name_or_path='work_dirs/tiny_models/tiny_qwen_image',
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/tiny_models/tiny_qwen_image/image_encoder'
    ),
)
optim_wrapper = _base_._tiny_optim_wrapper
train_dataloader = _base_._tiny_train_dataloader
val_evaluator = test_evaluator = _base_._tiny_val_evaluator
