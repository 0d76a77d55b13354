# sd35_mini_dataset on the tiny SD3-shaped family (tiny SigLIP at 384 px, as
# SD3.5's) at 64 px, in fp32: seconds on a CPU.
# Write the family first: python tools/make_tiny_models.py
_base_ = ['./sd35_mini_dataset.py', '../_base_/tiny_transformer_run.py']

model = dict(
    _base_._tiny_model,
    pretrained_model_name_or_path='work_dirs/tiny_models/tiny_sd3',
    image_encoder=dict(
        pretrained_model_name_or_path='work_dirs/tiny_models/tiny_sd3/image_encoder'
    ),
    # The published Resampler's depth and head width, one head, 16 queries.
    image_projection=dict(hidden_dims=64, num_tokens=16, timestep_in_dim=32),
)
optim_wrapper = _base_._tiny_optim_wrapper
train_dataloader = _base_._tiny_train_dataloader
val_evaluator = test_evaluator = _base_._tiny_val_evaluator
