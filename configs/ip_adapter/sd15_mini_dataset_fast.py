# sd15_mini_dataset, fast: the frozen encoders' outputs come from an embedding
# cache, frozen weights in bf16 under bf16 autocast, channels-last UNet.
# Build the cache first: python tools/cache_embeddings.py <this config>
_base_ = ['./sd15_mini_dataset.py']

model = dict(frozen_dtype='bf16', channels_last=True)
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16')
train_dataloader = dict(
    pin_memory=True,
    dataset=dict(
        embedding_cache='work_dirs/embedding_cache/sd15_mini_dataset_fast'))
