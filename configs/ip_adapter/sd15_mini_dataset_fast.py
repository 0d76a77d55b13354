# sd15_mini_dataset, fast: the frozen encoders' outputs come from an embedding
# cache; precision, frozen-weight dtype, memory format, attention kernels,
# loader workers, threads and the host allocator chosen for the machine (bf16
# on GPUs with bf16 and CPUs with native bf16, fp16 with loss scaling on older
# GPUs, else fp32).
# Build the cache first: python tools/cache_embeddings.py <this config>
_base_ = ['./sd15_mini_dataset.py']

hardware = dict(
    amp='auto',
    frozen_dtype='auto',
    channels_last='auto',
    attention='auto',
    num_workers='auto',
    threads='auto',
    compile='auto',
    allocator='auto',
)
train_dataloader = dict(
    dataset=dict(embedding_cache='work_dirs/embedding_cache/sd15_mini_dataset_fast')
)
