# AdamW as in the IP-Adapter paper's recipe, 10 epochs. `--amp` switches the
# wrapper to mmengine's AmpOptimWrapper (CUDA).
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.01)
)
# Validation (the quick evaluation cases) every 5 epochs.
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=10, val_interval=5)
# A constant learning rate, as in the reference training scripts.
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
